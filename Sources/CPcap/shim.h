#ifndef ALGATE_CPCAP_SHIM_H
#define ALGATE_CPCAP_SHIM_H
// libpcap reads pcap and pcapng files; algate only reads captures (never opens a live interface here).
// `link "pcap"` in the module map, no pkg-config: Debian's libpcap.pc drags in unrelated D-Bus include paths.
#include <stdio.h>
#include <pcap/pcap.h>
#endif

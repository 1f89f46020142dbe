#ifndef ALGATE_CNFTABLES_SHIM_H
#define ALGATE_CNFTABLES_SHIM_H
// libnftables: algate hands it nft scripts (the text `nft -f` reads) for its own tables only.
#include <stdbool.h>
#include <stdint.h>
#include <nftables/libnftables.h>
#endif

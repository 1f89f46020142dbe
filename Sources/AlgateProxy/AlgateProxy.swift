// AlgateProxy

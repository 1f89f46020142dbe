// AlgateConfig

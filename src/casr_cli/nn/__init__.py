"""Network serialisation: modules that carry their config (:mod:`.config_module`) and
safetensors files with config and metadata (:mod:`.weights_io`)."""

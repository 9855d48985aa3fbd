"""sparkedit decode engine: model, tokenizer, decoding, targets and the msgpack-RPC server."""

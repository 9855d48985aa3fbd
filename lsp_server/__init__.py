"""sparkedit language server: documents, prompts, the LSP surface and the headless commands."""

//! Configuration: environment, `<root>/.env`, `ao.toml`, with the precedence product.md gives.
//! (Filled in by the model-layer work.)

# salvor developer tasks. `just --list` shows them.

# Run the whole test suite (what CI runs).
test:
    cargo test --workspace

# The README's demo: list the images of the committed demo data-root.
demo:
    cargo run --release -- --root fixtures/demo/data-root.tar.zst images

# Re-run the engine fixture scripts against the local Docker engine.
fixtures:
    for s in fixtures/engine/make-*.sh; do bash "$s"; done

# Throughput benchmark: rebuild a multi-GB synthetic layer; ratios to the SHA-256 floor and to `docker save`.
bench size_mib="2048":
    bash bench/throughput.sh {{size_mib}}

lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

//! Shared helpers for the host integration tests live in `tests/`.

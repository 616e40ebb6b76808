//! Integration tests of sluice against real local services (moto server, PostgreSQL).
//!
//! Each file next to this one is one test binary; the services and helpers they use live in
//! the `sluice-local` crate (`local/`), which `make demo` shares.

//! The S3 notification at the edge: Lambda's JSON payload (raw objects created, or the
//! `s3:TestEvent`) → sluice's [`sluice_core::notify::ObjectNotice`]s or the reason it is skipped.
//!
//! The message is S3's own format, the same for both S3-triggered functions and for the SQS
//! bodies the local stack reads, so it is read in one place, `sluice_core::notify`; this
//! module is where the function names it.

pub use sluice_core::notify::S3Input;

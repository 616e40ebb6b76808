//! The lake contract: everything that is written to the bucket and read back from it is
//! defined here, once.
//!
//! - [`keys`]: the zones' object keys, built and parsed (raw, quarantine, curated, partitions,
//!   file names, output stems), and the decoding of keys in S3 notifications.
//! - [`line`](mod@line): a raw line, the record's own JSON text with [`line::LineMeta`] spliced in.
//! - [`quarantine`]: the one quarantine line type of both stages and the one [`quarantine::RejectKind`].
//! - [`dead_letter`]: the dead-letter zone's keys, archive formats and their parser.
//! - [`stream`]: the one Kinesis record type and the order of sequence numbers.
//!
//! No crate outside this module formats or splits a zone key by hand (`tests/tidy.rs` checks).

pub mod dead_letter;
pub mod keys;
pub mod line;
pub mod quarantine;
pub mod stream;

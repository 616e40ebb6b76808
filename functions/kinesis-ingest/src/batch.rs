//! The pure ingest path: stream records in, compressed objects planned out.
//!
//! Every user record ends in exactly one planned object: a raw object of its dataset and
//! event-time partition, or a quarantine object with its reason and payload. Objects are keyed
//! by shard and first/last sequence number, and their bytes depend only on the input, so a
//! redelivered batch plans the same keys with the same bytes.

use std::collections::BTreeMap;

use std::borrow::Cow;

use sluice_core::config::PipelineConfig;
use sluice_core::env::Zones;
use sluice_core::lake::keys::{batch_file_name, object_key, Partition, UNROUTED};
use sluice_core::lake::line::{push_line_with_meta, LineMeta};
use sluice_core::lake::quarantine::{Origin, QuarantineLine, RejectKind};
use sluice_core::lake::stream::StreamRecord;
use sluice_core::ndjson::{gzip, push_json_line};
use sluice_core::record::{deaggregate, split_user_records, validate, Reject, UserRecord};
use sluice_core::schema::format_micros;
use sluice_core::Result;

/// Which zone an object belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Zone {
    Raw,
    Quarantine,
}

/// One object to write.
#[derive(Debug, Clone)]
pub struct PlannedObject {
    pub zone: Zone,
    pub key: String,
    /// gzip-compressed NDJSON.
    pub body: Vec<u8>,
    /// Lines (user records) in the object.
    pub records: usize,
    /// Uncompressed size.
    pub raw_bytes: usize,
    /// Indexes of the stream records with at least one line here (ascending, unique).
    pub sources: Vec<usize>,
    /// The configured dataset the lines belong to (`None` for unrouted quarantine lines).
    pub dataset: Option<String>,
    /// The newest event time among the lines (raw objects only), in µs since the epoch.
    pub newest_event_micros: Option<i64>,
}

/// The outcome of planning one batch.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub objects: Vec<PlannedObject>,
    /// Stream records in the batch.
    pub stream_records: usize,
    /// User records (after de-aggregation and NDJSON splitting).
    pub user_records: usize,
    /// User records planned into the raw zone.
    pub valid: usize,
    /// User records planned into the quarantine, by kind.
    pub rejected: BTreeMap<RejectKind, usize>,
    /// The same, by dataset ([`UNROUTED`] when the record names no configured one) and kind.
    pub rejected_in: BTreeMap<(String, RejectKind), usize>,
}

impl Plan {
    /// User records planned into the quarantine.
    pub fn quarantined(&self) -> usize {
        self.rejected.values().sum()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct GroupKey<'a> {
    zone: Zone,
    dataset: &'a str,
    /// Event-time (raw) or arrival (quarantine) hour, see [`Partition::hour_of`].
    hour: i64,
    shard: &'a str,
}

#[derive(Debug, Default)]
struct Group<'a> {
    lines: Vec<u8>,
    records: usize,
    first_seq: &'a str,
    last_seq: &'a str,
    sources: Vec<usize>,
    newest_event_micros: Option<i64>,
}

impl<'a> Group<'a> {
    fn note(&mut self, idx: usize, seq: &'a str) {
        if self.records == 0 {
            self.first_seq = seq;
        }
        self.last_seq = seq;
        if self.sources.last() != Some(&idx) {
            self.sources.push(idx);
        }
        self.records += 1;
    }
}

/// Plans the objects for one batch. Fails only if encoding itself fails (never on input).
pub fn plan_batch<'a>(
    cfg: &'a PipelineConfig,
    zones: &Zones,
    records: &'a [StreamRecord],
) -> Result<Plan> {
    let mut plan = Plan {
        stream_records: records.len(),
        ..Plan::default()
    };
    let mut groups: BTreeMap<GroupKey<'a>, Group<'a>> = BTreeMap::new();
    for (idx, rec) in records.iter().enumerate() {
        let arrival = format_micros(rec.arrival_micros);
        let quarantine = |groups: &mut BTreeMap<GroupKey<'a>, Group<'a>>,
                          plan: &mut Plan,
                          reject: &Reject,
                          sub: u32,
                          pk: &str,
                          payload: &[u8]|
         -> Result<()> {
            let dataset = reject
                .dataset
                .as_deref()
                .and_then(|name| cfg.dataset(name))
                .map_or(UNROUTED, |d| d.name.as_str());
            let key = GroupKey {
                zone: Zone::Quarantine,
                dataset,
                hour: Partition::hour_of(rec.arrival_micros),
                shard: &rec.shard,
            };
            let g = groups.entry(key).or_default();
            push_json_line(
                &mut g.lines,
                &QuarantineLine::new(
                    reject.kind,
                    &reject.reason,
                    Origin::Stream {
                        dataset: reject.dataset.as_deref().map(Cow::Borrowed),
                        shard: Cow::Borrowed(&rec.shard),
                        seq: Cow::Borrowed(&rec.seq),
                        sub,
                        partition_key: Cow::Borrowed(pk),
                        arrival: Cow::Borrowed(&arrival),
                    },
                    payload,
                ),
            )?;
            g.note(idx, &rec.seq);
            *plan.rejected.entry(reject.kind).or_default() += 1;
            *plan
                .rejected_in
                .entry((dataset.to_string(), reject.kind))
                .or_default() += 1;
            Ok(())
        };
        let agg = match deaggregate(&rec.data) {
            Ok(a) => a,
            Err(reject) => {
                plan.user_records += 1;
                quarantine(
                    &mut groups,
                    &mut plan,
                    &reject,
                    0,
                    &rec.partition_key,
                    &rec.data,
                )?;
                continue;
            }
        };
        let mut users: Vec<UserRecord<'_>> = Vec::new();
        split_user_records(
            &rec.data,
            &rec.partition_key,
            agg.as_ref(),
            cfg.max_record_bytes,
            &mut users,
        );
        for u in &users {
            plan.user_records += 1;
            let (obj, text) = match &u.decoded {
                Ok(ok) => ok,
                Err(reject) => {
                    quarantine(
                        &mut groups,
                        &mut plan,
                        reject,
                        u.sub,
                        u.partition_key,
                        u.payload,
                    )?;
                    continue;
                }
            };
            match validate(cfg, obj, rec.arrival_micros) {
                Ok(valid) => {
                    let key = GroupKey {
                        zone: Zone::Raw,
                        dataset: &valid.dataset.name,
                        hour: Partition::hour_of(valid.event_micros),
                        shard: &rec.shard,
                    };
                    let g = groups.entry(key).or_default();
                    let meta = LineMeta {
                        shard: rec.shard.as_str().into(),
                        seq: rec.seq.as_str().into(),
                        sub: u.sub,
                        pk: u.partition_key.into(),
                        arrival: arrival.as_str().into(),
                    };
                    push_line_with_meta(&mut g.lines, &meta, text)?;
                    g.note(idx, &rec.seq);
                    g.newest_event_micros = g.newest_event_micros.max(Some(valid.event_micros));
                    plan.valid += 1;
                }
                Err(reject) => quarantine(
                    &mut groups,
                    &mut plan,
                    &reject,
                    u.sub,
                    u.partition_key,
                    u.payload,
                )?,
            }
        }
    }
    for (k, g) in groups {
        let prefix = match k.zone {
            Zone::Raw => &zones.raw,
            Zone::Quarantine => &zones.quarantine,
        };
        let file = batch_file_name(k.shard, g.first_seq, g.last_seq);
        plan.objects.push(PlannedObject {
            zone: k.zone,
            key: object_key(prefix, k.dataset, &Partition::of_hour(k.hour), &file),
            body: gzip(&g.lines, cfg.gzip_level)?,
            records: g.records,
            raw_bytes: g.lines.len(),
            sources: g.sources,
            dataset: (k.dataset != UNROUTED).then(|| k.dataset.to_string()),
            newest_event_micros: g.newest_event_micros,
        });
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::kpl;
    use std::io::Read;

    const CFG: &str = r#"
        [pipeline]
        routing_field = "type"
        [[dataset]]
        name = "clicks"
        route = "click"
        key = "id"
        event_time = "ts"
        fields = [
          { name = "id", type = "string", required = true },
          { name = "ts", type = "timestamp", required = true },
        ]
    "#;

    fn rec(seq: &str, data: &[u8]) -> StreamRecord {
        StreamRecord {
            shard: "shardId-000000000000".into(),
            seq: seq.into(),
            partition_key: "pk".into(),
            arrival_micros: 1_763_806_500_000_000, // 2025-11-22T10:15:00Z
            data: data.to_vec(),
        }
    }

    fn gunzip(b: &[u8]) -> String {
        let mut s = String::new();
        flate2::read::GzDecoder::new(b)
            .read_to_string(&mut s)
            .expect("gzip");
        s
    }

    fn plan(records: &[StreamRecord]) -> Plan {
        let cfg = PipelineConfig::from_toml(CFG).expect("config");
        plan_batch(&cfg, &Zones::default(), records).expect("plan")
    }

    #[test]
    fn groups_by_dataset_and_event_hour() {
        let p = plan(&[
            rec(
                "1",
                br#"{"type":"click","id":"a","ts":"2025-11-22T09:59:59Z"}"#,
            ),
            rec(
                "2",
                br#"{"type":"click","id":"b","ts":"2025-11-22T10:00:00Z"}"#,
            ),
            rec(
                "3",
                br#"{"type":"click","id":"c","ts":"2025-11-22T09:00:00Z"}"#,
            ),
            rec("4", b"nope"),
        ]);
        let keys: Vec<&str> = p.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(
            keys,
            vec![
                "raw/clicks/dt=2025-11-22/hr=09/shardId-000000000000-1-3.json.gz",
                "raw/clicks/dt=2025-11-22/hr=10/shardId-000000000000-2-2.json.gz",
                "quarantine/_unrouted/dt=2025-11-22/hr=10/shardId-000000000000-4-4.json.gz",
            ]
        );
        assert_eq!(p.objects[0].sources, vec![0, 2]);
        assert_eq!((p.valid, p.quarantined(), p.user_records), (3, 1, 4));
        let q = gunzip(&p.objects[2].body);
        let line: serde_json::Value = serde_json::from_str(q.trim()).expect("json");
        assert_eq!(line["error_kind"], "invalid_json");
        assert_eq!(line["payload_b64"], "bm9wZQ==");
        assert_eq!(line["seq"], "4");
        assert_eq!(line["arrival"], "2025-11-22T10:15:00.000Z");
    }

    #[test]
    fn every_user_record_lands_once() {
        let agg = kpl::aggregate(&[
            kpl::UserRecord {
                partition_key: "k1".into(),
                data: br#"{"type":"click","id":"x","ts":"2025-11-22T10:00:00Z"}"#.to_vec(),
            },
            kpl::UserRecord {
                partition_key: "k2".into(),
                data: br#"{"type":"click","id":"y"}"#.to_vec(),
            },
        ]);
        let p = plan(&[
            rec("1", &agg),
            rec(
                "2",
                b"{\"type\":\"click\",\"id\":\"z\",\"ts\":\"2025-11-22T10:00:00Z\"}\n[1]",
            ),
        ]);
        assert_eq!(p.user_records, 4);
        let lines: usize = p
            .objects
            .iter()
            .map(|o| gunzip(&o.body).lines().count())
            .sum();
        assert_eq!(lines, 4);
        assert_eq!(p.objects.iter().map(|o| o.records).sum::<usize>(), 4);
        assert_eq!(p.rejected.get(&RejectKind::MissingField), Some(&1));
        assert_eq!(p.rejected.get(&RejectKind::NotAnObject), Some(&1));
        let raw = gunzip(&p.objects[0].body);
        let first: serde_json::Value =
            serde_json::from_str(raw.lines().next().unwrap_or("")).expect("json");
        assert_eq!(first["_sluice"]["pk"], "k1");
        assert_eq!(first["_sluice"]["sub"], 0);
    }

    #[test]
    fn planning_is_deterministic() {
        let batch = vec![
            rec(
                "7",
                br#"{"type":"click","id":"a","ts":"2025-11-22T09:59:59Z"}"#,
            ),
            rec("8", b"\xff"),
        ];
        let a = plan(&batch);
        let b = plan(&batch);
        assert_eq!(a.objects.len(), b.objects.len());
        for (x, y) in a.objects.iter().zip(&b.objects) {
            assert_eq!((x.key.as_str(), &x.body), (y.key.as_str(), &y.body));
        }
    }

    #[test]
    fn empty_batch_plans_nothing() {
        let p = plan(&[]);
        assert!(p.objects.is_empty());
        assert_eq!(p.user_records, 0);
    }
}

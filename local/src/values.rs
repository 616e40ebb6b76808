//! Reconciliation by value: a sample of the purchases the producers sent, read back from the
//! curated Parquet with DuckDB and from PostgreSQL, and compared field by field with what was
//! sent. Counts can agree while values are wrong (rounded numbers, a stale version, a swapped
//! column); this is the check that would see it. The demo's rollup is compared with a
//! `GROUP BY` over its table the same way ([`purchases_rollup_mismatches`]).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::readers::{duckdb, Files};
use crate::{Aws, Pg};

/// What the value check compared and what differed (field names and ids, never values).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValueCheck {
    /// Records compared in each of Parquet and PostgreSQL.
    pub sampled: usize,
    /// `<store> <order_id> <field>` for every difference.
    pub mismatches: Vec<String>,
}

/// The purchase fields compared, as they were sent.
#[derive(Debug, Clone, PartialEq)]
struct Purchase {
    ts_ms: Option<i64>,
    /// At the demo's `decimal(12,2)` scale, as text (`12.50`): compared exactly.
    amount: Option<String>,
    currency: Option<String>,
    items: Option<i64>,
    coupon: Option<String>,
    payment: Option<Value>,
}

fn from_sent(v: &Value) -> Purchase {
    Purchase {
        ts_ms: v["ts"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_millis()),
        amount: cents(&v["amount"]),
        currency: v["currency"].as_str().map(str::to_string),
        items: v["items"].as_i64(),
        coupon: v["coupon"].as_str().map(str::to_string),
        payment: (!v["payment"].is_null()).then(|| v["payment"].clone()),
    }
}

/// A number, or its text, as a `decimal(12,2)` text; `None` if it is not one.
fn cents(v: &Value) -> Option<String> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    sluice_core::decimal::parse(&text, 12, 2)
        .ok()
        .map(|u| sluice_core::decimal::format(u, 2))
}

/// A row read back: `payment` is JSON text in both stores.
fn from_read(r: &Value) -> Purchase {
    Purchase {
        ts_ms: r["ts_ms"].as_i64(),
        amount: cents(&r["amount"]),
        currency: r["currency"].as_str().map(str::to_string),
        items: r["items"].as_i64(),
        coupon: r["coupon"].as_str().map(str::to_string),
        payment: r["payment"]
            .as_str()
            .and_then(|t| serde_json::from_str(t).ok()),
    }
}

fn diff(store: &str, id: &str, want: &Purchase, got: Option<&Purchase>, out: &mut Vec<String>) {
    let Some(got) = got else {
        out.push(format!("{store} {id} missing"));
        return;
    };
    let fields = [
        ("ts", want.ts_ms == got.ts_ms),
        ("amount", want.amount == got.amount),
        ("currency", want.currency == got.currency),
        ("items", want.items == got.items),
        ("coupon", want.coupon == got.coupon),
        ("payment", want.payment == got.payment),
    ];
    for (name, same) in fields {
        if !same {
            out.push(format!("{store} {id} {name}"));
        }
    }
}

/// Compares up to `sample` of the `sent` purchase records (JSON objects with an `order_id`)
/// with the curated Parquet under `curated_prefix` (read by DuckDB; `skip` names objects left
/// out, such as a drill's deliberately conflicting file) and with `schema.purchases`.
#[allow(clippy::too_many_arguments)]
pub async fn check_purchases(
    aws: &Aws,
    bucket: &str,
    curated_prefix: &str,
    skip: &[&str],
    pg: &Pg,
    schema: &str,
    sent: &[Value],
    sample: usize,
) -> Result<ValueCheck> {
    let step = (sent.len() / sample.max(1)).max(1);
    let want: BTreeMap<String, Purchase> = sent
        .iter()
        .step_by(step)
        .take(sample)
        .filter_map(|v| Some((v["order_id"].as_str()?.to_string(), from_sent(v))))
        .collect();
    let mut check = ValueCheck {
        sampled: want.len(),
        ..ValueCheck::default()
    };
    if want.is_empty() {
        return Ok(check);
    }
    let ids: Vec<String> = want.keys().cloned().collect();
    let in_list = ids
        .iter()
        .map(|id| format!("'{}'", id.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(",");

    let files = Files::new()?;
    for key in aws.keys(bucket, curated_prefix).await {
        if skip.contains(&key.as_str()) {
            continue;
        }
        files.put(&key, &aws.get(bucket, &key).await)?;
    }
    let glob = format!("{}/**/*.parquet", files.dir().display());
    let parquet = duckdb(&format!(
        "SELECT order_id, epoch_ms(ts) AS ts_ms, CAST(amount AS VARCHAR) AS amount, currency, items, coupon, payment \
         FROM read_parquet('{glob}') WHERE order_id IN ({in_list})"
    ))?;
    let parquet: BTreeMap<String, Purchase> = parquet
        .iter()
        .filter_map(|r| Some((r["order_id"].as_str()?.to_string(), from_read(r))))
        .collect();

    let client = pg.client().await?;
    let sql = format!(
        "SELECT coalesce(json_agg(r), '[]')::text FROM (SELECT order_id, \
         (extract(epoch FROM ts) * 1000)::bigint AS ts_ms, amount::text AS amount, currency, items, coupon, \
         payment::text AS payment FROM \"{schema}\".purchases WHERE order_id = ANY($1)) r"
    );
    let text: String = client
        .query_one(&sql, &[&ids])
        .await
        .context("read purchases back")?
        .get(0);
    let rows: Vec<Value> = serde_json::from_str(&text).context("json_agg")?;
    let postgres: BTreeMap<String, Purchase> = rows
        .iter()
        .filter_map(|r| Some((r["order_id"].as_str()?.to_string(), from_read(r))))
        .collect();

    for (id, w) in &want {
        diff("parquet", id, w, parquet.get(id), &mut check.mismatches);
        diff("postgres", id, w, postgres.get(id), &mut check.mismatches);
    }
    Ok(check)
}

/// Rows where the demo's `purchases_per_hour` rollup and a `GROUP BY` over `purchases`
/// disagree (sums compared within 1e-9 relative, as float sums may round differently).
pub async fn purchases_rollup_mismatches(
    client: &tokio_postgres::Client,
    schema: &str,
) -> Result<Vec<String>> {
    let sql = format!(
        "WITH r AS (SELECT * FROM \"{s}\".purchases_per_hour), \
              g AS (SELECT date_trunc('hour', ts, 'UTC') AS bucket, currency, count(*) AS orders, \
                           sum(amount) AS revenue, count(DISTINCT user_id) AS buyers, max(amount) AS largest \
                    FROM \"{s}\".purchases GROUP BY 1, 2) \
         SELECT coalesce(r.bucket, g.bucket)::text || ' ' || coalesce(r.currency, g.currency) || ': rollup ' || \
                coalesce(r.orders::text || '/' || r.revenue::text || '/' || r.buyers::text || '/' || r.largest::text, 'missing') || \
                ' vs group by ' || coalesce(g.orders::text || '/' || g.revenue::text || '/' || g.buyers::text || '/' || g.largest::text, 'missing') \
         FROM r FULL JOIN g ON r.bucket = g.bucket AND r.currency IS NOT DISTINCT FROM g.currency \
         WHERE r.bucket IS NULL OR g.bucket IS NULL OR r.orders <> g.orders OR r.buyers <> g.buyers \
            OR r.largest <> g.largest OR abs(r.revenue - g.revenue) > 1e-9 * greatest(abs(g.revenue), 1)",
        s = schema
    );
    Ok(client
        .query(&sql, &[])
        .await
        .context("compare the purchases rollup with a GROUP BY")?
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect())
}

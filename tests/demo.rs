//! The demo pipeline end to end (small N): every record reconciles across the zones,
//! PostgreSQL, Glue and the failure path.

use sluice_core::config::PipelineConfig;
use sluice_local::pipeline::{run, Options};
use sluice_local::{workspace_root, Aws, Pg};

#[tokio::test]
async fn the_demo_pipeline_reconciles() {
    let cfg = PipelineConfig::from_path(&workspace_root().join("pipeline.toml").to_string_lossy())
        .expect("demo config");
    // The demo names its resources; a dedicated moto server keeps it apart from other tests.
    let moto = sluice_local::services::Moto::start();
    let aws = Aws::at(&moto.endpoint).await;
    let pg = Pg::start().expect("postgres");
    let opts = Options {
        events: 600,
        batch_size: 100,
        bad_per_mille: 50,
        progress: false,
        ..Options::default()
    };
    let sum = run(&aws, &pg, &cfg, &opts).await.expect("pipeline runs");
    sum.reconcile().expect("counts reconcile");
    assert_eq!(sum.produced, 600);
    assert!(
        sum.via_http >= 100,
        "a fifth arrives over HTTP: {}",
        sum.via_http
    );
    assert!(
        sum.quarantine_ingest > 0,
        "malformed events are quarantined"
    );
    assert!(sum.ingest_batches >= 6, "batches of 100 from every shard");
    assert_eq!(sum.tables.len(), 3, "{:?}", sum.tables);
    assert!(sum.tables.iter().all(|t| t.partitions > 0));
    assert!(!sum.purchases_per_hour.is_empty());
    assert_eq!(sum.dead_letters.len(), 1, "the drill's failure is archived");
    assert!(sum.dead_letters[0].starts_with("dead-letter/glue-catalog/"));
}

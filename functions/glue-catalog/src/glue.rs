//! The aws-sdk-glue adapter of the [`Catalog`] port.
//!
//! Table updates are read-modify-write: the table is read again, checked against the version
//! the caller evolved, and written back with only its columns replaced (existing column
//! comments kept) and sluice's properties merged in, with `VersionId` set so Glue itself
//! rejects a concurrent writer with `ConcurrentModificationException` (retryable).

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_glue::types::{
    Column as GlueColumn, DatabaseInput, PartitionInput, SerDeInfo, StorageDescriptor, Table,
    TableInput,
};

use crate::catalog::{
    Catalog, PartitionFailure, PartitionSpec, StorageSpec, TableSpec, TableState,
};
use crate::error::CatalogError;
use crate::hive::Column;
use crate::tables::TABLE_TYPE;

/// [`Catalog`] on aws-sdk-glue.
#[derive(Debug, Clone)]
pub struct GlueCatalog {
    client: aws_sdk_glue::Client,
}

impl GlueCatalog {
    /// An adapter over a Glue client.
    pub fn new(client: aws_sdk_glue::Client) -> Self {
        GlueCatalog { client }
    }

    async fn fetch(&self, database: &str, name: &str) -> Result<Option<Table>, CatalogError> {
        match self
            .client
            .get_table()
            .database_name(database)
            .name(name)
            .send()
            .await
        {
            Ok(out) => Ok(out.table),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_entity_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(CatalogError::glue("get_table", database, name, &e)),
        }
    }
}

fn invalid(
    op: &'static str,
    database: &str,
    table: &str,
    e: impl std::fmt::Display,
) -> CatalogError {
    CatalogError::Glue {
        op,
        database: database.to_string(),
        table: table.to_string(),
        code: "InvalidInput".into(),
        message: e.to_string(),
        retryable: false,
    }
}

fn hash_map(m: &BTreeMap<String, String>) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn glue_columns(
    columns: &[Column],
    keep: &[GlueColumn],
    op: &'static str,
    database: &str,
    table: &str,
) -> Result<Vec<GlueColumn>, CatalogError> {
    columns
        .iter()
        .map(|c| {
            let old = keep.iter().find(|k| k.name.eq_ignore_ascii_case(&c.name));
            GlueColumn::builder()
                .name(&c.name)
                .r#type(&c.ty)
                .set_comment(old.and_then(|o| o.comment.clone()))
                .set_parameters(old.and_then(|o| o.parameters.clone()))
                .build()
                .map_err(|e| invalid(op, database, table, e))
        })
        .collect()
}

fn storage_descriptor(
    s: &StorageSpec,
    op: &'static str,
    database: &str,
    table: &str,
) -> Result<StorageDescriptor, CatalogError> {
    Ok(StorageDescriptor::builder()
        .set_columns(Some(glue_columns(&s.columns, &[], op, database, table)?))
        .location(&s.location)
        .input_format(&s.input_format)
        .output_format(&s.output_format)
        .compressed(s.compressed)
        .number_of_buckets(-1)
        .serde_info(
            SerDeInfo::builder()
                .serialization_library(&s.serde_library)
                .set_parameters(Some(hash_map(&s.serde_parameters)))
                .build(),
        )
        .build())
}

fn own_columns(cols: &[GlueColumn]) -> Vec<Column> {
    cols.iter()
        .map(|c| Column::new(c.name.clone(), c.r#type.clone().unwrap_or_default()))
        .collect()
}

fn to_state(t: &Table) -> TableState {
    let sd = t.storage_descriptor();
    let serde = sd.and_then(|s| s.serde_info());
    let sorted = |m: Option<&HashMap<String, String>>| -> BTreeMap<String, String> {
        m.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    };
    TableState {
        spec: TableSpec {
            name: t.name().to_string(),
            storage: StorageSpec {
                location: sd
                    .and_then(|s| s.location())
                    .unwrap_or_default()
                    .to_string(),
                input_format: sd
                    .and_then(|s| s.input_format())
                    .unwrap_or_default()
                    .to_string(),
                output_format: sd
                    .and_then(|s| s.output_format())
                    .unwrap_or_default()
                    .to_string(),
                serde_library: serde
                    .and_then(|s| s.serialization_library())
                    .unwrap_or_default()
                    .to_string(),
                serde_parameters: sorted(serde.and_then(|s| s.parameters())),
                columns: sd.map(|s| own_columns(s.columns())).unwrap_or_default(),
                compressed: sd.is_some_and(|s| s.compressed),
            },
            partition_keys: own_columns(t.partition_keys()),
            parameters: sorted(t.parameters()),
        },
        version_id: t.version_id().map(str::to_string),
    }
}

#[async_trait]
impl Catalog for GlueCatalog {
    async fn ensure_database(&self, database: &str) -> Result<bool, CatalogError> {
        match self.client.get_database().name(database).send().await {
            Ok(_) => return Ok(false),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_entity_not_found_exception()) => {}
            Err(e) => return Err(CatalogError::glue("get_database", database, "", &e)),
        }
        let input = DatabaseInput::builder()
            .name(database)
            .description("sluice data lake (managed by glue-catalog)")
            .build()
            .map_err(|e| invalid("create_database", database, "", e))?;
        match self
            .client
            .create_database()
            .database_input(input)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_already_exists_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(CatalogError::glue("create_database", database, "", &e)),
        }
    }

    async fn get_table(
        &self,
        database: &str,
        name: &str,
    ) -> Result<Option<TableState>, CatalogError> {
        Ok(self.fetch(database, name).await?.as_ref().map(to_state))
    }

    async fn create_table(&self, database: &str, spec: &TableSpec) -> Result<bool, CatalogError> {
        const OP: &str = "create_table";
        let input = TableInput::builder()
            .name(&spec.name)
            .table_type(TABLE_TYPE)
            .storage_descriptor(storage_descriptor(&spec.storage, OP, database, &spec.name)?)
            .set_partition_keys(Some(glue_columns(
                &spec.partition_keys,
                &[],
                OP,
                database,
                &spec.name,
            )?))
            .set_parameters(Some(hash_map(&spec.parameters)))
            .build()
            .map_err(|e| invalid(OP, database, &spec.name, e))?;
        match self
            .client
            .create_table()
            .database_name(database)
            .table_input(input)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_already_exists_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(CatalogError::glue(OP, database, &spec.name, &e)),
        }
    }

    async fn update_table(
        &self,
        database: &str,
        current: &TableState,
        columns: &[Column],
        parameters: &BTreeMap<String, String>,
    ) -> Result<(), CatalogError> {
        const OP: &str = "update_table";
        let name = current.spec.name.as_str();
        let concurrent = |message: &str| CatalogError::Glue {
            op: OP,
            database: database.to_string(),
            table: name.to_string(),
            code: "ConcurrentModificationException".into(),
            message: message.to_string(),
            retryable: true,
        };
        let table = self
            .fetch(database, name)
            .await?
            .ok_or_else(|| concurrent("table disappeared while being updated"))?;
        if current.version_id.is_some() && table.version_id() != current.version_id.as_deref() {
            return Err(concurrent("table changed since it was read"));
        }
        let mut sd = table
            .storage_descriptor()
            .cloned()
            .unwrap_or_else(|| StorageDescriptor::builder().build());
        let kept = sd.columns.take().unwrap_or_default();
        sd.columns = Some(glue_columns(columns, &kept, OP, database, name)?);
        let mut params = table.parameters().cloned().unwrap_or_default();
        params.extend(parameters.iter().map(|(k, v)| (k.clone(), v.clone())));
        let input = TableInput::builder()
            .name(name)
            .set_description(table.description().map(str::to_string))
            .set_owner(table.owner().map(str::to_string))
            .retention(table.retention())
            .set_table_type(
                table
                    .table_type()
                    .map(str::to_string)
                    .or_else(|| Some(TABLE_TYPE.into())),
            )
            .storage_descriptor(sd)
            .set_partition_keys(Some(table.partition_keys().to_vec()))
            .set_parameters(Some(params))
            .build()
            .map_err(|e| invalid(OP, database, name, e))?;
        let mut req = self
            .client
            .update_table()
            .database_name(database)
            .table_input(input);
        if let Some(v) = table.version_id() {
            req = req.version_id(v);
        }
        req.send()
            .await
            .map(|_| ())
            .map_err(|e| CatalogError::glue(OP, database, name, &e))
    }

    async fn create_partitions(
        &self,
        database: &str,
        table: &str,
        partitions: &[PartitionSpec],
    ) -> Result<Vec<PartitionFailure>, CatalogError> {
        const OP: &str = "batch_create_partition";
        let inputs = partitions
            .iter()
            .map(|p| {
                Ok(PartitionInput::builder()
                    .set_values(Some(p.values.clone()))
                    .storage_descriptor(storage_descriptor(&p.storage, OP, database, table)?)
                    .build())
            })
            .collect::<Result<Vec<_>, CatalogError>>()?;
        let out = self
            .client
            .batch_create_partition()
            .database_name(database)
            .table_name(table)
            .set_partition_input_list(Some(inputs))
            .send()
            .await
            .map_err(|e| CatalogError::glue(OP, database, table, &e))?;
        Ok(out
            .errors()
            .iter()
            .map(|e| PartitionFailure {
                values: e.partition_values().to_vec(),
                code: e
                    .error_detail()
                    .and_then(|d| d.error_code())
                    .unwrap_or("Unknown")
                    .to_string(),
                message: e
                    .error_detail()
                    .and_then(|d| d.error_message())
                    .unwrap_or_default()
                    .to_string(),
            })
            .collect())
    }
}

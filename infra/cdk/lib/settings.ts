/**
 * Deployment settings of the sluice stack, read from CDK context (`cdk deploy -c key=value` or
 * cdk.json). Names and defaults mirror the SAM template's parameters (infra/sam/template.yaml),
 * in camelCase with a `sluice:` prefix; `make infra-test` checks both stacks agree.
 */
import { Node } from 'constructs';

export type StreamMode = 'ON_DEMAND' | 'PROVISIONED';
export type DatabaseMode = 'new' | 'existing';

export interface SluiceSettings {
  /** Where `make build` put the function zips: `<assetDir>/<function>/bootstrap.zip`. */
  readonly assetDir: string;
  readonly streamMode: StreamMode;
  readonly shardCount: number;
  readonly streamRetentionHours: number;
  readonly ingestBatchSize: number;
  readonly ingestBatchingWindowSeconds: number;
  readonly ingestParallelizationFactor: number;
  readonly ingestMaximumRetryAttempts: number;
  readonly ingestMaximumRecordAgeSeconds: number;
  readonly ingestMaxConcurrency: number;
  /** http-collector's partition-key field path; empty = a hash of the record. */
  readonly collectorPartitionKey: string;
  /** Largest request body http-collector accepts, in bytes (1024..6291456). */
  readonly collectorMaxBodyBytes: number;
  /** Collector API stage throttling: steady-state requests per second. */
  readonly collectorRateLimit: number;
  /** Collector API stage throttling: burst above the rate. */
  readonly collectorBurstLimit: number;
  /** Origins allowed by CORS on the collector API; empty = no CORS configuration. */
  readonly collectorCorsOrigins: string[];
  /** Empty: `sluice-<account>-<region>-<stack id suffix>`. */
  readonly dataBucketName: string;
  readonly rawExpirationDays: number;
  readonly quarantineExpirationDays: number;
  readonly deadLetterExpirationDays: number;
  /** 0 keeps curated/ objects. */
  readonly curatedExpirationDays: number;
  readonly glueDatabaseName: string;
  readonly asyncMaximumRetryAttempts: number;
  readonly asyncMaximumEventAgeSeconds: number;
  /** 0 = unreserved. */
  readonly transformReservedConcurrency: number;
  /** 0 = unreserved. */
  readonly catalogReservedConcurrency: number;
  readonly databaseMode: DatabaseMode;
  readonly auroraMinCapacity: number;
  readonly auroraMaxCapacity: number;
  readonly databaseDeletionProtection: boolean;
  /** Days between rotations of the new database's password (hosted rotation, single user). */
  readonly databaseRotationDays: number;
  readonly vpcCidr: string;
  readonly existingVpcId: string;
  readonly existingSubnetIds: string[];
  readonly existingSecurityGroupId: string;
  readonly existingDbSecretArn: string;
  readonly existingCreateVpcEndpoints: boolean;
  readonly existingRouteTableIds: string[];
  readonly alertEmail: string;
  readonly logRetentionDays: number;
  readonly logLevel: string;
  readonly iteratorAgeAlarmMs: number;
  readonly quarantinedRecordsAlarmThreshold: number;
  readonly rejectedRowsAlarmThreshold: number;
  readonly freshnessAlarmMs: number;
}

export const DEFAULTS: SluiceSettings = {
  assetDir: '../../target/lambda',
  streamMode: 'ON_DEMAND',
  shardCount: 2,
  streamRetentionHours: 24,
  ingestBatchSize: 500,
  ingestBatchingWindowSeconds: 5,
  ingestParallelizationFactor: 1,
  ingestMaximumRetryAttempts: 5,
  ingestMaximumRecordAgeSeconds: 21600,
  ingestMaxConcurrency: 8,
  collectorPartitionKey: '',
  collectorMaxBodyBytes: 6291456,
  collectorRateLimit: 500,
  collectorBurstLimit: 1000,
  collectorCorsOrigins: [],
  dataBucketName: '',
  rawExpirationDays: 365,
  quarantineExpirationDays: 90,
  deadLetterExpirationDays: 90,
  curatedExpirationDays: 0,
  glueDatabaseName: 'sluice',
  asyncMaximumRetryAttempts: 2,
  asyncMaximumEventAgeSeconds: 21600,
  transformReservedConcurrency: 0,
  catalogReservedConcurrency: 0,
  databaseMode: 'new',
  auroraMinCapacity: 0.5,
  auroraMaxCapacity: 4,
  databaseDeletionProtection: true,
  databaseRotationDays: 30,
  vpcCidr: '10.40.0.0/16',
  existingVpcId: '',
  existingSubnetIds: [],
  existingSecurityGroupId: '',
  existingDbSecretArn: '',
  existingCreateVpcEndpoints: true,
  existingRouteTableIds: [],
  alertEmail: '',
  logRetentionDays: 30,
  logLevel: 'info',
  iteratorAgeAlarmMs: 300000,
  quarantinedRecordsAlarmThreshold: 100,
  rejectedRowsAlarmThreshold: 100,
  freshnessAlarmMs: 900000,
};

function coerce(key: string, raw: unknown, def: unknown): unknown {
  if (Array.isArray(def)) {
    if (Array.isArray(raw)) return raw.map(String);
    return String(raw).split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  }
  if (typeof def === 'number') {
    const n = Number(raw);
    if (!Number.isFinite(n)) throw new Error(`context sluice:${key} must be a number, got ${String(raw)}`);
    return n;
  }
  if (typeof def === 'boolean') {
    if (raw === true || raw === 'true') return true;
    if (raw === false || raw === 'false') return false;
    throw new Error(`context sluice:${key} must be true or false, got ${String(raw)}`);
  }
  return String(raw);
}

/** Reads every setting from context `sluice:<name>`, falling back to DEFAULTS, and validates them. */
export function settingsFromContext(node: Node, overrides: Partial<SluiceSettings> = {}): SluiceSettings {
  const out: Record<string, unknown> = {};
  for (const [key, def] of Object.entries(DEFAULTS)) {
    const fromOverride = (overrides as Record<string, unknown>)[key];
    const raw = fromOverride !== undefined ? fromOverride : node.tryGetContext(`sluice:${key}`);
    out[key] = raw === undefined ? def : coerce(key, raw, def);
  }
  const s = out as unknown as SluiceSettings;
  validate(s);
  return s;
}

function between(name: string, v: number, lo: number, hi: number): void {
  if (!Number.isInteger(v) || v < lo || v > hi) throw new Error(`sluice:${name} must be an integer in ${lo}..${hi}, got ${v}`);
}

export function validate(s: SluiceSettings): void {
  if (s.streamMode !== 'ON_DEMAND' && s.streamMode !== 'PROVISIONED') throw new Error(`sluice:streamMode must be ON_DEMAND or PROVISIONED`);
  between('shardCount', s.shardCount, 1, 500);
  between('streamRetentionHours', s.streamRetentionHours, 24, 8760);
  between('ingestBatchSize', s.ingestBatchSize, 1, 10000);
  between('ingestBatchingWindowSeconds', s.ingestBatchingWindowSeconds, 0, 300);
  between('ingestParallelizationFactor', s.ingestParallelizationFactor, 1, 10);
  between('ingestMaximumRetryAttempts', s.ingestMaximumRetryAttempts, 0, 10000);
  between('ingestMaximumRecordAgeSeconds', s.ingestMaximumRecordAgeSeconds, 60, 604800);
  between('ingestMaxConcurrency', s.ingestMaxConcurrency, 1, 64);
  between('collectorMaxBodyBytes', s.collectorMaxBodyBytes, 1024, 6291456);
  if (!(s.collectorRateLimit >= 1)) throw new Error(`sluice:collectorRateLimit must be at least 1 request/s, got ${s.collectorRateLimit}`);
  if (!Number.isInteger(s.collectorBurstLimit) || s.collectorBurstLimit < 1) throw new Error(`sluice:collectorBurstLimit must be an integer of at least 1, got ${s.collectorBurstLimit}`);
  for (const o of s.collectorCorsOrigins) {
    if (!/^(https?:\/\/[^/\s]+|\*)$/.test(o)) throw new Error(`sluice:collectorCorsOrigins: ${o} is not an origin (scheme://host[:port], or *)`);
  }
  if (!(s.freshnessAlarmMs >= 60000)) throw new Error(`sluice:freshnessAlarmMs must be at least 60000 ms, got ${s.freshnessAlarmMs}`);
  for (const k of ['rawExpirationDays', 'quarantineExpirationDays', 'deadLetterExpirationDays'] as const) between(k, s[k], 1, 36500);
  between('curatedExpirationDays', s.curatedExpirationDays, 0, 36500);
  between('databaseRotationDays', s.databaseRotationDays, 1, 365);
  between('asyncMaximumRetryAttempts', s.asyncMaximumRetryAttempts, 0, 2);
  between('asyncMaximumEventAgeSeconds', s.asyncMaximumEventAgeSeconds, 60, 21600);
  if (!/^[a-z][a-z0-9_]{0,254}$/.test(s.glueDatabaseName)) throw new Error('sluice:glueDatabaseName must match [a-z][a-z0-9_]*');
  if (s.dataBucketName !== '' && !/^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(s.dataBucketName)) throw new Error('sluice:dataBucketName is not a valid bucket name');
  if (s.databaseMode !== 'new' && s.databaseMode !== 'existing') throw new Error('sluice:databaseMode must be new or existing');
  if (s.databaseMode === 'existing') {
    const missing = (['existingVpcId', 'existingSecurityGroupId', 'existingDbSecretArn'] as const).filter((k) => s[k] === '');
    if (s.existingSubnetIds.length === 0) missing.push('existingSubnetIds' as never);
    if (s.existingCreateVpcEndpoints && s.existingRouteTableIds.length === 0) missing.push('existingRouteTableIds' as never);
    if (missing.length > 0) throw new Error(`sluice:databaseMode=existing needs ${missing.map((m) => `sluice:${m}`).join(', ')}`);
  }
}

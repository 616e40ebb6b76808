/**
 * Assertion tests of the sluice CDK stack (run by `npm test` under `node --test`):
 * functions, event-source settings, notifications, the collector's HTTP API, encryption, IAM
 * scoped to named resources, and cdk-nag's AwsSolutions pack with every acknowledgement carrying
 * a reason.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { IConstruct } from 'constructs';
import { DEFAULTS, settingsFromContext, SluiceSettings } from '../lib/settings';
import { assetCode, COLLECTOR_ACCESS_LOG_FORMAT, FUNCTIONS, SluiceStack } from '../lib/sluice-stack';

/** A stand-in for `make build` output: `<dir>/<fn>/bootstrap.zip` (content is irrelevant to synth). */
function fakeAssets(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-assets-'));
  for (const f of FUNCTIONS) {
    fs.mkdirSync(path.join(dir, f));
    fs.writeFileSync(path.join(dir, f, 'bootstrap.zip'), 'placeholder');
  }
  return dir;
}
const ASSETS = fakeAssets();

const EXISTING: Partial<SluiceSettings> = {
  databaseMode: 'existing',
  existingVpcId: 'vpc-0123456789abcdef0',
  existingSubnetIds: ['subnet-0123456789abcdef0', 'subnet-0123456789abcdef1'],
  existingSecurityGroupId: 'sg-0123456789abcdef0',
  existingDbSecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:warehouse-AbCdEf',
  existingRouteTableIds: ['rtb-0123456789abcdef0', 'rtb-0123456789abcdef1'],
};

function build(overrides: Partial<SluiceSettings> = {}): { app: App; stack: SluiceStack; template: Template } {
  const app = new App();
  const stack = new SluiceStack(app, 'Test', { settings: settingsFromContext(app.node, { assetDir: ASSETS, ...overrides }) });
  return { app, stack, template: Template.fromStack(stack) };
}

const main = build();
const t = main.template;
const resources = (type: string) => t.findResources(type);

/** The function whose sluice:function tag is `name`: [logicalId, resource]. */
function fnByName(template: Template, name: string): [string, any] {
  const hits = Object.entries(template.findResources('AWS::Lambda::Function')).filter(([, r]) =>
    (r.Properties.Tags ?? []).some((tag: any) => tag.Key === 'sluice:function' && tag.Value === name));
  assert.equal(hits.length, 1, `one function tagged ${name}`);
  return hits[0] as [string, any];
}

/** Every statement of the policies attached to `roleLogicalId`. */
function statementsOf(template: Template, roleLogicalId: string): any[] {
  const out: any[] = [];
  for (const p of Object.values(template.findResources('AWS::IAM::Policy'))) {
    if ((p.Properties.Roles ?? []).some((r: any) => r.Ref === roleLogicalId)) out.push(...p.Properties.PolicyDocument.Statement);
  }
  const role = template.findResources('AWS::IAM::Role')[roleLogicalId];
  for (const p of role.Properties.Policies ?? []) out.push(...p.PolicyDocument.Statement);
  return out;
}
const arr = <T>(x: T | T[]): T[] => (Array.isArray(x) ? x : [x]);
const flat = (x: unknown) => JSON.stringify(x);

describe('functions', () => {
  it('declares exactly the five functions, arm64 on provided.al2023', () => {
    assert.equal(FUNCTIONS.length, 5);
    assert.equal(Object.keys(resources('AWS::Lambda::Function')).length, FUNCTIONS.length);
    for (const name of FUNCTIONS) {
      const [, fn] = fnByName(t, name);
      assert.deepEqual(fn.Properties.Architectures, ['arm64']);
      assert.equal(fn.Properties.Runtime, 'provided.al2023');
      assert.equal(fn.Properties.Handler, 'bootstrap');
      assert.equal(fn.Properties.TracingConfig.Mode, 'Active');
      assert.ok(fn.Properties.LoggingConfig.LogGroup, `${name} logs to its own log group`);
    }
  });

  it('sets the environment each function reads', () => {
    const env = (name: string) => fnByName(t, name)[1].Properties.Environment.Variables;
    assert.deepEqual(Object.keys(env('kinesis-ingest')).sort(), ['RUST_LOG', 'SLUICE_BUCKET', 'SLUICE_CONFIG', 'SLUICE_MAX_CONCURRENCY']);
    assert.equal(env('kinesis-ingest').SLUICE_MAX_CONCURRENCY, '8');
    assert.deepEqual(Object.keys(env('s3-transform')).sort(),
      ['RUST_LOG', 'SLUICE_BUCKET', 'SLUICE_CONFIG', 'SLUICE_DB_HOST', 'SLUICE_DB_SECRET_ARN', 'SLUICE_DB_TLS', 'SLUICE_HMAC_SECRET_ARN']);
    assert.equal(env('s3-transform').SLUICE_DB_TLS, 'require');
    assert.equal(env('s3-transform').DATABASE_URL, undefined, 'DATABASE_URL is the local alternative, never set in AWS');
    assert.deepEqual(Object.keys(env('glue-catalog')).sort(), ['RUST_LOG', 'SLUICE_BUCKET', 'SLUICE_CONFIG']);
    assert.deepEqual(Object.keys(env('failure-notifier')).sort(), ['RUST_LOG', 'SLUICE_ALERT_TOPIC_ARN', 'SLUICE_BUCKET']);
    assert.deepEqual(Object.keys(env('http-collector')).sort(), ['RUST_LOG', 'SLUICE_COLLECTOR_DEADLINE_MS', 'SLUICE_COLLECTOR_KEYS_SECRET',
      'SLUICE_COLLECTOR_KEYS_TTL_SECS', 'SLUICE_COLLECTOR_MAX_BODY_BYTES', 'SLUICE_COLLECTOR_PARTITION_KEY', 'SLUICE_COLLECTOR_STREAM']);
    // The config object lives under config/, outside raw/ and curated/, so no notification fires for it.
    assert.match(flat(env('kinesis-ingest').SLUICE_CONFIG), /\/config\/pipeline\.toml/);
  });

  it('puts only s3-transform in the VPC, in isolated subnets', () => {
    for (const name of FUNCTIONS) {
      const vpcConfig = fnByName(t, name)[1].Properties.VpcConfig;
      assert.equal(vpcConfig !== undefined, name === 's3-transform', name);
    }
    t.resourceCountIs('AWS::EC2::NatGateway', 0);
    t.resourceCountIs('AWS::EC2::InternetGateway', 0);
    t.hasResourceProperties('AWS::EC2::VPCEndpoint', { VpcEndpointType: 'Gateway', ServiceName: Match.objectLike({}) });
    t.hasResourceProperties('AWS::EC2::VPCEndpoint', { VpcEndpointType: 'Interface', PrivateDnsEnabled: true });
    const services = Object.values(resources('AWS::EC2::VPCEndpoint')).map((e) => flat(e.Properties.ServiceName));
    assert.ok(services.some((s) => s.includes('.s3')), 'S3 gateway endpoint');
    assert.ok(services.some((s) => s.includes('secretsmanager')), 'Secrets Manager interface endpoint');
  });
});

describe('event sources', () => {
  it('wires Kinesis to kinesis-ingest with bounded, bisecting retries and an on-failure queue', () => {
    const [ingestId] = fnByName(t, 'kinesis-ingest');
    const [queueId] = Object.keys(resources('AWS::SQS::Queue')).filter((id) => id.startsWith('FailureQueue'));
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: ingestId },
      EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Stream'), 'Arn'] },
      StartingPosition: 'TRIM_HORIZON',
      BatchSize: 500,
      MaximumBatchingWindowInSeconds: 5,
      ParallelizationFactor: 1,
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 5,
      MaximumRecordAgeInSeconds: 21600,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queueId, 'Arn'] } } },
    });
  });

  it('takes the batching settings from context', () => {
    const { template } = build({ ingestBatchSize: 2000, ingestBatchingWindowSeconds: 20, ingestParallelizationFactor: 4, streamMode: 'PROVISIONED', shardCount: 8 });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', { BatchSize: 2000, MaximumBatchingWindowInSeconds: 20, ParallelizationFactor: 4 });
    template.hasResourceProperties('AWS::Kinesis::Stream', { ShardCount: 8, StreamModeDetails: { StreamMode: 'PROVISIONED' } });
  });

  it('drains the failure queue into failure-notifier with partial batch responses', () => {
    const [notifierId] = fnByName(t, 'failure-notifier');
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: notifierId },
      EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^FailureQueue'), 'Arn'] },
      BatchSize: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    t.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: { deadLetterTargetArn: Match.anyValue(), maxReceiveCount: 5 },
      VisibilityTimeout: 360,
    });
  });

  it('bounds async retries of the S3-triggered functions and sends failures to the queue', () => {
    const configs = Object.values(resources('AWS::Lambda::EventInvokeConfig'));
    assert.equal(configs.length, 2);
    const targets = configs.map((c) => c.Properties.FunctionName.Ref).sort();
    assert.deepEqual(targets, [fnByName(t, 'glue-catalog')[0], fnByName(t, 's3-transform')[0]].sort());
    for (const c of configs) {
      assert.equal(c.Properties.Qualifier, '$LATEST');
      assert.equal(c.Properties.MaximumRetryAttempts, 2);
      assert.equal(c.Properties.MaximumEventAgeInSeconds, 21600);
      assert.match(flat(c.Properties.DestinationConfig.OnFailure.Destination), /FailureQueue/);
    }
  });
});

describe('http collector', () => {
  const [collectorId, collector] = fnByName(t, 'http-collector');
  const [apiId, api] = Object.entries(resources('AWS::ApiGatewayV2::Api'))[0];
  const stages = Object.values(resources('AWS::ApiGatewayV2::Stage'));

  it('is one HTTP API with POST /v1/events and POST /v1/firehose, both proxied to http-collector', () => {
    t.resourceCountIs('AWS::ApiGatewayV2::Api', 1);
    assert.equal(api.Properties.ProtocolType, 'HTTP');
    const routes = Object.values(resources('AWS::ApiGatewayV2::Route'));
    assert.deepEqual(routes.map((r) => r.Properties.RouteKey).sort(), ['POST /v1/events', 'POST /v1/firehose']);
    const integrations = resources('AWS::ApiGatewayV2::Integration');
    for (const r of routes) {
      assert.deepEqual(r.Properties.ApiId, { Ref: apiId });
      const target = r.Properties.Target['Fn::Join'][1];
      assert.equal(target[0], 'integrations/');
      const integration = integrations[target[1].Ref];
      assert.ok(integration, `${r.Properties.RouteKey} targets an integration of this stack`);
      assert.equal(integration.Properties.IntegrationType, 'AWS_PROXY');
      assert.deepEqual(integration.Properties.IntegrationUri, { 'Fn::GetAtt': [collectorId, 'Arn'] });
      assert.equal(integration.Properties.PayloadFormatVersion, '2.0');
      // The integration must outlast the function's own write deadline.
      const deadline = Number(collector.Properties.Environment.Variables.SLUICE_COLLECTOR_DEADLINE_MS);
      assert.ok(integration.Properties.TimeoutInMillis >= deadline, `integration timeout ${integration.Properties.TimeoutInMillis} >= ${deadline}`);
      assert.ok(collector.Properties.Timeout * 1000 > deadline, 'function timeout above the deadline');
      // The function checks the API key itself (401/403 before Kinesis): no API Gateway authorizer.
      assert.equal(r.Properties.AuthorizationType, 'NONE');
    }
    t.resourceCountIs('AWS::ApiGatewayV2::Authorizer', 0);
    // API Gateway may invoke the function, from this API only.
    const permissions = Object.values(resources('AWS::Lambda::Permission')).filter((p) => p.Properties.Principal === 'apigateway.amazonaws.com');
    assert.ok(permissions.length > 0);
    for (const p of permissions) {
      assert.deepEqual(p.Properties.FunctionName, { 'Fn::GetAtt': [collectorId, 'Arn'] });
      assert.match(flat(p.Properties.SourceArn), new RegExp(`"Ref":"${apiId}"`));
    }
  });

  it('runs the function with its settings and the stream, secret and limits in its environment', () => {
    const p = collector.Properties;
    assert.equal(p.MemorySize, 256);
    assert.equal(p.Timeout, 15);
    assert.equal(p.VpcConfig, undefined);
    const env = p.Environment.Variables;
    assert.deepEqual(env.SLUICE_COLLECTOR_STREAM, { Ref: Object.keys(resources('AWS::Kinesis::Stream'))[0] });
    const [secretId] = Object.keys(resources('AWS::SecretsManager::Secret')).filter((id) => id.startsWith('CollectorKeysSecret'));
    assert.deepEqual(env.SLUICE_COLLECTOR_KEYS_SECRET, { Ref: secretId });
    assert.equal(env.SLUICE_COLLECTOR_PARTITION_KEY, '');
    assert.equal(env.SLUICE_COLLECTOR_MAX_BODY_BYTES, '6291456');
    assert.equal(env.SLUICE_COLLECTOR_DEADLINE_MS, '10000');
    assert.equal(env.SLUICE_COLLECTOR_KEYS_TTL_SECS, '300');
    const other = fnByName(build({ collectorPartitionKey: 'device.id', collectorMaxBodyBytes: 1048576 }).template, 'http-collector')[1];
    assert.equal(other.Properties.Environment.Variables.SLUICE_COLLECTOR_PARTITION_KEY, 'device.id');
    assert.equal(other.Properties.Environment.Variables.SLUICE_COLLECTOR_MAX_BODY_BYTES, '1048576');
    assert.throws(() => build({ collectorMaxBodyBytes: 6291457 }), /collectorMaxBodyBytes/);
    assert.throws(() => build({ collectorMaxBodyBytes: 1023 }), /collectorMaxBodyBytes/);
  });

  it('keeps the API keys in a generated secret whose api_key entry Firehose can read', () => {
    const [, secret] = Object.entries(resources('AWS::SecretsManager::Secret')).find(([id]) => id.startsWith('CollectorKeysSecret'))!;
    assert.deepEqual(secret.Properties.GenerateSecretString,
      { SecretStringTemplate: '{}', GenerateStringKey: 'api_key', PasswordLength: 40, ExcludePunctuation: true });
    assert.match(flat(secret.Properties.Name), /\/collector-keys/);
  });

  it('auto-deploys one $default stage, throttled by the settings', () => {
    assert.equal(stages.length, 1);
    const stage = stages[0].Properties;
    assert.deepEqual(stage.ApiId, { Ref: apiId });
    assert.equal(stage.StageName, '$default');
    assert.equal(stage.AutoDeploy, true);
    assert.deepEqual(stage.DefaultRouteSettings, { ThrottlingRateLimit: 500, ThrottlingBurstLimit: 1000 });
    const other = build({ collectorRateLimit: 50, collectorBurstLimit: 100 }).template;
    other.hasResourceProperties('AWS::ApiGatewayV2::Stage', { DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 } });
    assert.throws(() => build({ collectorBurstLimit: 0 }), /collectorBurstLimit/);
  });

  it('writes a JSON access log line per request to its own log group', () => {
    const logSettings = stages[0].Properties.AccessLogSettings;
    const groupId = logSettings.DestinationArn['Fn::GetAtt'][0];
    assert.equal(logSettings.DestinationArn['Fn::GetAtt'][1], 'Arn');
    const group = resources('AWS::Logs::LogGroup')[groupId];
    assert.ok(group, 'the destination is a log group of this stack');
    assert.equal(group.Properties.RetentionInDays, DEFAULTS.logRetentionDays);
    assert.notDeepEqual(collector.Properties.LoggingConfig.LogGroup, { Ref: groupId }, 'apart from the function log');
    const fields = JSON.parse(logSettings.Format);
    assert.deepEqual(fields, COLLECTOR_ACCESS_LOG_FORMAT);
    for (const f of ['requestId', 'ip', 'requestTime', 'httpMethod', 'routeKey', 'status', 'protocol', 'responseLength',
      'integrationErrorMessage', 'integrationLatency']) {
      assert.match(fields[f], /^\$context\./, f);
    }
  });

  it('has no CORS configuration unless origins are given', () => {
    assert.equal(api.Properties.CorsConfiguration, undefined);
    const origins = ['https://app.example.com', 'https://partner.example.org'];
    build({ collectorCorsOrigins: origins }).template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      CorsConfiguration: {
        AllowOrigins: origins,
        AllowMethods: ['POST'],
        AllowHeaders: ['content-type', 'content-encoding', 'authorization', 'x-api-key'],
        MaxAge: 600,
      },
    });
    assert.throws(() => build({ collectorCorsOrigins: ['app.example.com'] }), /collectorCorsOrigins/);
  });

  it('outputs the events URL and the keys secret', () => {
    const outputs = t.findOutputs('*');
    assert.match(flat(outputs.CollectorUrl.Value), new RegExp(`"${apiId}","ApiEndpoint".*/v1/events`));
    assert.match(flat(outputs.CollectorKeysSecretArn.Value), /CollectorKeysSecret/);
  });
});

describe('data bucket', () => {
  const [bucketId, bucket] = Object.entries(resources('AWS::S3::Bucket'))[0];

  it('sends raw/ to s3-transform and curated/ to glue-catalog', () => {
    const configs = bucket.Properties.NotificationConfiguration.LambdaConfigurations;
    const byPrefix = Object.fromEntries(configs.map((c: any) => [c.Filter.S3Key.Rules[0].Value, c]));
    assert.deepEqual(Object.keys(byPrefix).sort(), ['curated/', 'raw/']);
    assert.deepEqual(byPrefix['raw/'].Function, { 'Fn::GetAtt': [fnByName(t, 's3-transform')[0], 'Arn'] });
    assert.deepEqual(byPrefix['curated/'].Function, { 'Fn::GetAtt': [fnByName(t, 'glue-catalog')[0], 'Arn'] });
    for (const c of configs) assert.equal(c.Event, 's3:ObjectCreated:*');
    // S3 checks the invoke permissions when the notification is put: the bucket waits for them.
    const permissions = Object.keys(resources('AWS::Lambda::Permission'));
    for (const p of permissions.filter((id) => id.includes('ObjectCreated'))) assert.ok(arr(bucket.DependsOn).includes(p), p);
  });

  it('is encrypted with the data key, private, TLS-only, and expires every zone but curated by default', () => {
    const sse = bucket.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0];
    assert.equal(sse.ServerSideEncryptionByDefault.SSEAlgorithm, 'aws:kms');
    assert.match(flat(sse.ServerSideEncryptionByDefault.KMSMasterKeyID), /"DataKey[0-9A-F]*"/);
    assert.equal(sse.BucketKeyEnabled, true);
    assert.deepEqual(bucket.Properties.PublicAccessBlockConfiguration,
      { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
    t.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: bucketId },
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
    const rules = bucket.Properties.LifecycleConfiguration.Rules;
    const raw = rules.find((r: any) => r.Prefix === 'raw/');
    const quarantine = rules.find((r: any) => r.Prefix === 'quarantine/');
    assert.equal(raw.ExpirationInDays, DEFAULTS.rawExpirationDays);
    assert.equal(quarantine.ExpirationInDays, DEFAULTS.quarantineExpirationDays);
    assert.equal(rules.find((r: any) => r.Prefix === 'dead-letter/').ExpirationInDays, DEFAULTS.deadLetterExpirationDays);
    assert.equal(rules.find((r: any) => r.Prefix === 'curated/'), undefined, 'curated/ is kept unless asked');
    const curated = (build({ curatedExpirationDays: 400 }).template.toJSON().Resources[bucketId] as any)
      .Properties.LifecycleConfiguration.Rules.find((r: any) => r.Prefix === 'curated/');
    assert.equal(curated.ExpirationInDays, 400);
    assert.throws(() => build({ deadLetterExpirationDays: 0 }), /deadLetterExpirationDays/);
    assert.equal(bucket.DeletionPolicy, 'Retain');
  });
});

describe('encryption at rest', () => {
  it('encrypts the stream and queues with the data key, and the topic, secrets and database', () => {
    const dataKey = { 'Fn::GetAtt': [Match.stringLikeRegexp('^DataKey'), 'Arn'] };
    t.hasResourceProperties('AWS::Kinesis::Stream', { StreamEncryption: { EncryptionType: 'KMS', KeyId: dataKey } });
    const queues = Object.values(resources('AWS::SQS::Queue'));
    assert.equal(queues.length, 2);
    for (const q of queues) assert.match(flat(q.Properties.KmsMasterKeyId), /"DataKey[0-9A-F]*"/);
    t.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^AlertKey'), 'Arn'] } });
    t.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    t.hasResourceProperties('AWS::RDS::DBCluster', {
      Engine: 'aurora-postgresql', StorageEncrypted: true, EnableIAMDatabaseAuthentication: true,
      ServerlessV2ScalingConfiguration: { MinCapacity: 0.5, MaxCapacity: 4 },
    });
    t.hasResourceProperties('AWS::RDS::DBInstance', { DBInstanceClass: 'db.serverless', PubliclyAccessible: false });
    t.hasResourceProperties('AWS::SecretsManager::SecretTargetAttachment', { TargetType: 'AWS::RDS::DBCluster' });
    // RDS JSON format: dbname and username in the template, host/port from the attachment.
    t.hasResourceProperties('AWS::SecretsManager::Secret', {
      GenerateSecretString: Match.objectLike({ SecretStringTemplate: Match.stringLikeRegexp('"dbname":"sluice"') }),
    });
  });
});

describe('the data key', () => {
  const [keyId, key] = Object.entries(resources('AWS::KMS::Key')).find(([id]) => id.startsWith('DataKey'))!;
  const statements = key.Properties.KeyPolicy.Statement;

  it('rotates, and is used only through S3, Kinesis and SQS by principals of the account', () => {
    assert.equal(key.Properties.EnableKeyRotation, true);
    const use = statements.find((st: any) => flat(st.Action).includes('kms:Decrypt'));
    assert.deepEqual(arr(use.Action).sort(), ['kms:Decrypt', 'kms:DescribeKey', 'kms:GenerateDataKey']);
    assert.match(flat(use.Condition.StringEquals['kms:ViaService']), /s3\..*kinesis\..*sqs\./);
    assert.ok(use.Condition.StringEquals['kms:CallerAccount']);
    // No statement grants use without the condition, and none grants kms:*.
    for (const st of statements) {
      assert.ok(!arr(st.Action).includes('kms:*'), flat(st));
      if (arr(st.Action).some((a: string) => ['kms:Decrypt', 'kms:GenerateDataKey', 'kms:Encrypt'].includes(a))) assert.ok(st.Condition, flat(st));
    }
    t.hasResourceProperties('AWS::KMS::Alias', { TargetKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] } });
  });

  it('is granted to every function role, for Decrypt and GenerateDataKey only', () => {
    for (const name of FUNCTIONS) {
      const role = fnByName(t, name)[1].Properties.Role['Fn::GetAtt'][0] as string;
      const onKey = statementsOf(t, role).filter((st) => flat(st.Resource).includes(keyId));
      assert.ok(onKey.length > 0, name);
      for (const st of onKey) for (const a of arr(st.Action)) assert.ok(['kms:Decrypt', 'kms:GenerateDataKey'].includes(a), `${name}: ${a}`);
    }
  });
});

describe('IAM', () => {
  const roleOf = (name: string) => fnByName(t, name)[1].Properties.Role['Fn::GetAtt'][0] as string;
  // Actions that AWS offers no resource-level permissions for.
  const UNSCOPABLE = new Set(['xray:PutTraceSegments', 'xray:PutTelemetryRecords', 'ec2:CreateNetworkInterface', 'ec2:DescribeNetworkInterfaces',
    'ec2:DescribeSubnets', 'ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses']);

  it('gives every function its own role', () => {
    const roles = FUNCTIONS.map(roleOf);
    assert.equal(new Set(roles).size, FUNCTIONS.length);
  });

  it('scopes every statement to named resources', () => {
    for (const name of FUNCTIONS) {
      for (const st of statementsOf(t, roleOf(name))) {
        assert.equal(st.Effect, 'Allow');
        for (const action of arr(st.Action)) assert.ok(!String(action).endsWith(':*') && action !== '*', `${name}: ${action}`);
        if (arr(st.Resource).includes('*')) {
          for (const action of arr(st.Action)) assert.ok(UNSCOPABLE.has(action), `${name}: ${action} on *`);
        }
      }
    }
  });

  it('limits S3 access to each function\'s zone prefixes', () => {
    const access = (name: string) => {
      const out: Record<string, string[]> = {};
      for (const st of statementsOf(t, roleOf(name))) {
        for (const action of arr(st.Action).filter((a: string) => a.startsWith('s3:'))) {
          out[action] = arr(st.Resource).map((r) => (flat(r).match(/\/([a-z-]+)\/\*/) ?? ['', `NOT-A-PREFIX ${flat(r)}`])[1]).sort();
        }
      }
      return out;
    };
    assert.deepEqual(access('kinesis-ingest'), {
      's3:GetObject': ['config'], 's3:PutObject': ['quarantine', 'raw'], 's3:AbortMultipartUpload': ['quarantine', 'raw'],
    });
    assert.deepEqual(access('s3-transform'), {
      's3:GetObject': ['config', 'raw'], 's3:PutObject': ['curated', 'quarantine'], 's3:AbortMultipartUpload': ['curated', 'quarantine'],
    });
    assert.deepEqual(access('glue-catalog'), { 's3:GetObject': ['config', 'curated', 'raw'] });
    assert.deepEqual(access('failure-notifier'), { 's3:PutObject': ['dead-letter'], 's3:AbortMultipartUpload': ['dead-letter'] });
  });

  it('scopes Glue to the pipeline database and its tables', () => {
    const glue = statementsOf(t, roleOf('glue-catalog')).filter((st) => arr(st.Action).some((a: string) => a.startsWith('glue:')));
    assert.equal(glue.length, 1);
    assert.deepEqual(arr(glue[0].Action).sort(), ['glue:BatchCreatePartition', 'glue:CreateDatabase', 'glue:CreateTable', 'glue:GetDatabase',
      'glue:GetPartitions', 'glue:GetTable', 'glue:UpdateTable']);
    const res = arr(glue[0].Resource).map(flat).join(' ');
    assert.match(res, /:catalog/);
    assert.match(res, /:database\/sluice"/);
    assert.match(res, /:table\/sluice\/\*/);
    for (const name of ['kinesis-ingest', 's3-transform', 'failure-notifier']) {
      assert.ok(!statementsOf(t, roleOf(name)).some((st) => flat(st.Action).includes('glue:')), `${name} has no Glue access`);
    }
  });

  it('lets only s3-transform and http-collector read secrets, and only failure-notifier publish alerts', () => {
    for (const name of FUNCTIONS) {
      const sts = statementsOf(t, roleOf(name));
      assert.equal(sts.some((st) => flat(st.Action).includes('secretsmanager:')), name === 's3-transform' || name === 'http-collector', name);
      assert.equal(sts.some((st) => flat(st.Action).includes('sns:Publish')), name === 'failure-notifier', name);
    }
    const secrets = statementsOf(t, roleOf('s3-transform')).find((st) => flat(st.Action).includes('secretsmanager:GetSecretValue'));
    assert.equal(arr(secrets.Resource).length, 2);
    for (const r of arr(secrets.Resource)) assert.ok(!flat(r).includes('*'), flat(r));
  });

  it('lets http-collector put records on the stream and read its keys secret, nothing else', () => {
    const sts = statementsOf(t, roleOf('http-collector'));
    const [streamId] = Object.keys(resources('AWS::Kinesis::Stream'));
    const [secretId] = Object.keys(resources('AWS::SecretsManager::Secret')).filter((id) => id.startsWith('CollectorKeysSecret'));
    const grants = sts.flatMap((st) => arr(st.Action).map((a: string) => [a, arr(st.Resource).map(flat)] as const));
    const byAction = Object.fromEntries(grants.map(([a, r]) => [a, r]));
    assert.deepEqual(Object.keys(byAction).sort(), ['kinesis:PutRecords', 'kms:Decrypt', 'kms:GenerateDataKey', 'logs:CreateLogStream', 'logs:PutLogEvents',
      'secretsmanager:GetSecretValue', 'xray:PutTelemetryRecords', 'xray:PutTraceSegments']);
    assert.deepEqual(byAction['kinesis:PutRecords'], [flat({ 'Fn::GetAtt': [streamId, 'Arn'] })]);
    assert.deepEqual(byAction['secretsmanager:GetSecretValue'], [flat({ Ref: secretId })]);
    assert.match(byAction['logs:PutLogEvents'][0], /HttpCollectorFunctionLogGroup/);
    // Only the collector writes to the stream; no other role reads its keys.
    for (const name of FUNCTIONS.filter((n) => n !== 'http-collector')) {
      const other = statementsOf(t, roleOf(name));
      assert.ok(!other.some((st) => flat(st.Action).includes('kinesis:Put')), `${name} does not write to the stream`);
      assert.ok(!other.some((st) => flat(st.Resource).includes(secretId)), `${name} cannot read the collector keys`);
    }
  });

  it('lets failure-notifier read only the stream it recovers batches from', () => {
    const kinesisSts = statementsOf(t, roleOf('failure-notifier')).filter((st) => flat(st.Action).includes('kinesis:'));
    assert.ok(kinesisSts.length > 0);
    for (const st of kinesisSts) for (const r of arr(st.Resource)) assert.match(flat(r), /Stream[0-9A-F]+/);
  });
});

describe('operations', () => {
  it('alarms on iterator age, errors, throttles, failure-queue depth, quarantined and rejected records, the database, partitions and freshness, into SNS', () => {
    const alarms = Object.values(resources('AWS::CloudWatch::Alarm'));
    const metrics = alarms.map((a) => `${a.Properties.Namespace}/${a.Properties.MetricName}`).sort();
    assert.deepEqual(metrics, [
      'AWS/ApiGateway/5xx',
      'AWS/Lambda/Errors', 'AWS/Lambda/Errors', 'AWS/Lambda/Errors', 'AWS/Lambda/Errors', 'AWS/Lambda/Errors', 'AWS/Lambda/IteratorAge',
      'AWS/Lambda/Throttles', 'AWS/Lambda/Throttles', 'AWS/Lambda/Throttles', 'AWS/Lambda/Throttles', 'AWS/Lambda/Throttles',
      'AWS/SQS/ApproximateNumberOfMessagesVisible', 'AWS/SQS/ApproximateNumberOfMessagesVisible',
      'sluice/ConfigRejected', 'sluice/ConfigRejected', 'sluice/ConfigRejected',
      'sluice/DatabaseConnectionErrors', 'sluice/FreshnessWarehouse', 'sluice/PartitionsFailed', 'sluice/RecordsQuarantined', 'sluice/RowsRejected',
    ]);
    for (const m of ['Errors', 'Throttles']) {
      const of = alarms.filter((a) => a.Properties.MetricName === m).map((a) => a.Properties.Dimensions[0].Value.Ref).sort();
      assert.deepEqual(of, FUNCTIONS.map((n) => fnByName(t, n)[0]).sort(), `a ${m} alarm per function`);
    }
    const serverErrors = alarms.find((a) => a.Properties.MetricName === '5xx');
    assert.deepEqual(serverErrors?.Properties.Dimensions, [{ Name: 'ApiId', Value: { Ref: Object.keys(resources('AWS::ApiGatewayV2::Api'))[0] } }]);
    const dims = (metric: string) => alarms.find((a) => a.Properties.MetricName === metric)?.Properties.Dimensions;
    assert.deepEqual(dims('RecordsQuarantined'), [{ Name: 'function', Value: 'kinesis-ingest' }]);
    for (const m of ['RowsRejected', 'DatabaseConnectionErrors', 'FreshnessWarehouse']) assert.deepEqual(dims(m), [{ Name: 'function', Value: 's3-transform' }], m);
    assert.deepEqual(dims('PartitionsFailed'), [{ Name: 'function', Value: 'glue-catalog' }]);
    const rejected = alarms.filter((a) => a.Properties.MetricName === 'ConfigRejected').map((a) => a.Properties.Dimensions[0].Value).sort();
    assert.deepEqual(rejected, ['glue-catalog', 'kinesis-ingest', 's3-transform'], 'every function that reads the pipeline config');
    const fresh = alarms.find((a) => a.Properties.MetricName === 'FreshnessWarehouse')?.Properties;
    assert.equal(fresh.Statistic, 'Minimum');
    assert.equal(fresh.Threshold, DEFAULTS.freshnessAlarmMs);
    assert.equal(fresh.DatapointsToAlarm, 3);
    assert.throws(() => build({ freshnessAlarmMs: 1000 }), /freshnessAlarmMs/);
    for (const a of alarms) {
      assert.match(flat(a.Properties.AlarmActions), /AlertTopic/);
      assert.equal(a.Properties.TreatMissingData, 'notBreaching');
    }
    t.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    const body = flat(Object.values(resources('AWS::CloudWatch::Dashboard'))[0].Properties.DashboardBody).replace(/\\/g, '');
    for (const m of ['FreshnessWarehouse', 'FreshnessCurated', 'FreshnessRaw', 'RowsCurated', 'RowsRejected', 'RecordsQuarantined', 'PartitionsRegistered', 'PartitionsFailed']) {
      assert.ok(body.includes(`SEARCH('{sluice,dataset,function} MetricName="${m}"'`), `a per-dataset ${m} graph`);
    }
    t.resourceCountIs('AWS::SNS::Subscription', 0);
    build({ alertEmail: 'ops@example.com' }).template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
  });

  it('keeps logs for the configured retention', () => {
    const groups = Object.values(resources('AWS::Logs::LogGroup'));
    assert.ok(groups.length >= 5);
    for (const g of groups) assert.equal(g.Properties.RetentionInDays, DEFAULTS.logRetentionDays);
  });
});

describe('database proxy', () => {
  it('puts an RDS Proxy with TLS and secret authentication between s3-transform and the cluster', () => {
    t.hasResourceProperties('AWS::RDS::DBProxy', {
      EngineFamily: 'POSTGRESQL', RequireTLS: true,
      Auth: [Match.objectLike({ AuthScheme: 'SECRETS', IAMAuth: 'DISABLED', ClientPasswordAuthType: 'POSTGRES_SCRAM_SHA_256' })],
    });
    t.hasResourceProperties('AWS::RDS::DBProxyTargetGroup', {
      ConnectionPoolConfigurationInfo: Match.objectLike({ MaxConnectionsPercent: 90 }),
      DBClusterIdentifiers: [Match.anyValue()],
    });
    const [, transform] = fnByName(t, 's3-transform');
    assert.match(flat(transform.Properties.Environment.Variables.SLUICE_DB_HOST), /DatabaseProxy.*Endpoint/);
    // s3-transform reaches the cluster only through the proxy.
    const ingress = Object.values(resources('AWS::EC2::SecurityGroupIngress')).map((r: any) => r.Properties);
    const intoDb = ingress.filter((p) => flat(p.GroupId).includes('DatabaseSecurityGroup'));
    assert.deepEqual(intoDb.map((p) => p.Description).sort(), ['Allow connections to the database Cluster from the Proxy', 'PostgreSQL from the secret rotation']);
    assert.ok(ingress.some((p) => flat(p.GroupId).includes('DatabaseProxySecurityGroup') && flat(p.SourceSecurityGroupId).includes('TransformSecurityGroup')));
  });

  it('is not created for an existing database, whose secret names the host', () => {
    const { template } = build(EXISTING);
    template.resourceCountIs('AWS::RDS::DBProxy', 0);
    assert.equal(fnByName(template, 's3-transform')[1].Properties.Environment.Variables.SLUICE_DB_HOST, '');
  });
});

describe('database secret rotation', () => {
  it('rotates the new database\'s password with the hosted single-user function in its subnets', () => {
    assert.ok(arr(t.toJSON().Transform).includes('AWS::SecretsManager-2024-09-16'));
    const [[, schedule]] = Object.entries(resources('AWS::SecretsManager::RotationSchedule'));
    const p = schedule.Properties;
    assert.equal(p.HostedRotationLambda.RotationType, 'PostgreSQLSingleUser');
    assert.deepEqual(p.RotationRules, { ScheduleExpression: 'rate(30 days)' });
    assert.match(flat(p.SecretId), /DatabaseSecretAttachment/);
    assert.match(flat(p.HostedRotationLambda.VpcSubnetIds), /Subnet/);
    assert.match(flat(p.HostedRotationLambda.VpcSecurityGroupIds), /DatabaseRotationSecurityGroup/);
    const rule = (type: string, port: number, desc: string) =>
      Object.values(resources(type)).some((r: any) => r.Properties.FromPort === port && r.Properties.Description === desc);
    assert.ok(rule('AWS::EC2::SecurityGroupIngress', 5432, 'PostgreSQL from the secret rotation'));
    assert.ok(rule('AWS::EC2::SecurityGroupIngress', 443, 'HTTPS from the secret rotation'));
  });

  it('takes the interval from context and leaves an existing database\'s secret alone', () => {
    const { template } = build({ databaseRotationDays: 7 });
    template.hasResourceProperties('AWS::SecretsManager::RotationSchedule', { RotationRules: { ScheduleExpression: 'rate(7 days)' } });
    build(EXISTING).template.resourceCountIs('AWS::SecretsManager::RotationSchedule', 0);
    assert.throws(() => build({ databaseRotationDays: 0 }), /databaseRotationDays/);
  });
});

describe('existing database', () => {
  const { template } = build(EXISTING);

  it('creates no VPC or cluster and uses the given network and secret', () => {
    template.resourceCountIs('AWS::EC2::VPC', 0);
    template.resourceCountIs('AWS::RDS::DBCluster', 0);
    const [, transform] = fnByName(template, 's3-transform');
    assert.deepEqual(transform.Properties.VpcConfig.SubnetIds, EXISTING.existingSubnetIds);
    assert.deepEqual(transform.Properties.VpcConfig.SecurityGroupIds, [EXISTING.existingSecurityGroupId]);
    assert.equal(transform.Properties.Environment.Variables.SLUICE_DB_SECRET_ARN, EXISTING.existingDbSecretArn);
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', { VpcId: EXISTING.existingVpcId, VpcEndpointType: 'Interface' });
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', { VpcId: EXISTING.existingVpcId, VpcEndpointType: 'Gateway', RouteTableIds: EXISTING.existingRouteTableIds });
  });

  it('can skip the endpoints when the VPC already has them', () => {
    build({ ...EXISTING, existingCreateVpcEndpoints: false }).template.resourceCountIs('AWS::EC2::VPCEndpoint', 0);
  });

  it('refuses to synthesize without the network and secret', () => {
    assert.throws(() => build({ databaseMode: 'existing' }), /existingVpcId.*existingSecurityGroupId.*existingDbSecretArn.*existingSubnetIds/);
    assert.throws(() => build({ ingestParallelizationFactor: 11 }), /ingestParallelizationFactor/);
  });
});

describe('code assets', () => {
  it('asks for `make build` when a zip is missing', () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-empty-'));
    assert.throws(() => assetCode(empty)('kinesis-ingest'), /kinesis-ingest\/bootstrap\.zip not found: run `make build`/);
  });
});

describe('cdk-nag AwsSolutions', () => {
  /** Every acknowledgement recorded in the tree: [construct path, rule id, reason]. */
  function acknowledgements(root: IConstruct): [string, string, string][] {
    const out: [string, string, string][] = [];
    for (const c of root.node.findAll()) {
      for (const m of c.node.metadata) {
        if (m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY) {
          for (const [id, reason] of Object.entries(m.data as Record<string, string>)) out.push([c.node.path, id, String(reason)]);
        }
      }
    }
    return out;
  }

  for (const [label, overrides] of [['new database', {}], ['existing database', EXISTING]] as const) {
    it(`reports no unacknowledged finding (${label})`, () => {
      const { stack } = build(overrides);
      const report = new AwsSolutionsChecks().validateScope(stack);
      const findings = report.violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} at ${r.constructPath}`));
      assert.deepEqual(findings, []);
      assert.equal(report.success, true);
    });
  }

  it('justifies every acknowledgement in code', () => {
    // CDK itself records a few acknowledgements of its own (e.g. CloudFormation-Validate::W3010).
    const acks = acknowledgements(main.stack).filter(([, id]) => id.includes('AwsSolutions-'));
    assert.ok(acks.length > 0);
    for (const [where, id, reason] of acks) {
      assert.ok(reason.length >= 40, `${where} ${id}: reason too short: ${reason}`);
    }
    // The rules acknowledged, so a new one shows up in review.
    const rules = [...new Set(acks.map(([, id]) => id.replace(/^annotation::/i, '').replace(/\[.*$/, '')))].sort();
    assert.deepEqual(rules, ['AwsSolutions-APIG4', 'AwsSolutions-IAM5', 'AwsSolutions-KDS3', 'AwsSolutions-S1', 'AwsSolutions-SMG4']);
  });

  it('still catches a violation (the pack is live)', () => {
    const app = new App();
    const stack = new Stack(app, 'Bad');
    new sqs.Queue(stack, 'Q');
    const report = new AwsSolutionsChecks().validateScope(stack);
    assert.ok(report.violations.some((v) => v.ruleName === 'AwsSolutions-SQS3'));
  });
});

/**
 * The sluice stack: the same resources as infra/sam/template.yaml, in CDK.
 *
 *   Kinesis ─► kinesis-ingest ─► s3 raw/ ─► s3-transform ─► s3 curated/ + PostgreSQL
 *                                                  curated/ ─► glue-catalog ─► Glue
 *   every failure path ─► one SQS queue ─► failure-notifier ─► s3 dead-letter/ + SNS
 *   HTTP API (POST /v1/events, /v1/firehose) ─► http-collector ─► Kinesis PutRecords
 *
 * Function code comes from `make build` (`target/lambda/<fn>/bootstrap.zip`): one release
 * build serves `sam build`, `cdk deploy` and the zips, instead of a second cargo-lambda
 * bundling pass per function.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Aws, CfnOutput, Duration, Fn, RemovalPolicy, Stack, StackProps, Tags, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as glue from 'aws-cdk-lib/aws-glue';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { flattenCfnReference } from 'cdk-nag/lib/utils/flatten-cfn-reference';
import { Construct, IConstruct } from 'constructs';
import { SluiceSettings } from './settings';

/** The Lambda functions; binary name = crate name = directory under functions/. */
export const FUNCTIONS = ['kinesis-ingest', 's3-transform', 'glue-catalog', 'failure-notifier', 'http-collector'] as const;
export type FunctionName = (typeof FUNCTIONS)[number];

export interface SluiceStackProps extends StackProps {
  readonly settings: SluiceSettings;
  /** Code for a function; default: `<settings.assetDir>/<name>/bootstrap.zip`. */
  readonly code?: (name: FunctionName) => lambda.Code;
}

/** The collector API's access log line (JSON); the SAM template's AccessLogSettings.Format is the same. */
export const COLLECTOR_ACCESS_LOG_FORMAT: Record<string, string> = {
  requestId: '$context.requestId',
  ip: '$context.identity.sourceIp',
  requestTime: '$context.requestTime',
  httpMethod: '$context.httpMethod',
  routeKey: '$context.routeKey',
  status: '$context.status',
  protocol: '$context.protocol',
  responseLength: '$context.responseLength',
  userAgent: '$context.identity.userAgent',
  errorMessage: '$context.error.message',
  integrationErrorMessage: '$context.integrationErrorMessage',
  integrationStatus: '$context.integrationStatus',
  integrationLatency: '$context.integrationLatency',
  responseLatency: '$context.responseLatency',
};

/** The collector API's routes (all to http-collector, payload format 2.0). */
export const COLLECTOR_ROUTES = ['/v1/events', '/v1/firehose'] as const;

/** Records a cdk-nag acknowledgement; every one carries its reason here in the code. */
function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

export function assetCode(assetDir: string): (name: FunctionName) => lambda.Code {
  return (name) => {
    // Relative to the CDK app directory (infra/cdk), wherever cdk runs from.
    const zip = path.resolve(__dirname, '..', assetDir, name, 'bootstrap.zip');
    if (!fs.existsSync(zip)) {
      throw new Error(`${zip} not found: run \`make build\` first (cargo lambda build --release --arm64 --output-format zip)`);
    }
    return lambda.Code.fromAsset(zip);
  };
}

export class SluiceStack extends Stack {
  readonly functions: Record<FunctionName, lambda.Function>;

  constructor(scope: Construct, id: string, props: SluiceStackProps) {
    super(scope, id, props);
    const s = props.settings;
    const code = props.code ?? assetCode(s.assetDir);
    const newDb = s.databaseMode === 'new';

    // ------------------------------------------------------------ data key
    // One customer-managed key for the data at rest: the bucket (with S3 Bucket Keys), the stream
    // and the failure queues. Usage is allowed only through those three services, to principals
    // of this account whose IAM policies grant it (the functions' roles; readers of the lake need
    // kms:Decrypt on it too); the account administers it.
    const accountRoot = new iam.AccountRootPrincipal();
    const dataKey = new kms.Key(this, 'DataKey', {
      description: 'sluice data at rest (data bucket, stream, failure queues)',
      enableKeyRotation: true,
      alias: `alias/sluice/${Aws.STACK_NAME}/data`,
      policy: new iam.PolicyDocument({
        statements: [
          new iam.PolicyStatement({
            sid: 'AccountAdministration',
            principals: [accountRoot],
            actions: ['kms:Create*', 'kms:Describe*', 'kms:Enable*', 'kms:List*', 'kms:Put*', 'kms:Update*', 'kms:Revoke*', 'kms:Disable*',
              'kms:Get*', 'kms:Delete*', 'kms:TagResource', 'kms:UntagResource', 'kms:ScheduleKeyDeletion', 'kms:CancelKeyDeletion', 'kms:RotateKeyOnDemand'],
            resources: ['*'],
          }),
          new iam.PolicyStatement({
            sid: 'UseThroughS3KinesisAndSqs',
            principals: [accountRoot],
            actions: ['kms:Decrypt', 'kms:GenerateDataKey', 'kms:DescribeKey'],
            resources: ['*'],
            conditions: {
              StringEquals: {
                'kms:CallerAccount': Aws.ACCOUNT_ID,
                'kms:ViaService': ['s3', 'kinesis', 'sqs'].map((svc) => `${svc}.${Aws.REGION}.amazonaws.com`),
              },
            },
          }),
        ],
      }),
    });

    // ------------------------------------------------------------ stream
    const stream = new kinesis.Stream(this, 'Stream', {
      streamMode: s.streamMode === 'ON_DEMAND' ? kinesis.StreamMode.ON_DEMAND : kinesis.StreamMode.PROVISIONED,
      shardCount: s.streamMode === 'PROVISIONED' ? s.shardCount : undefined,
      retentionPeriod: Duration.hours(s.streamRetentionHours),
      encryption: kinesis.StreamEncryption.KMS,
      encryptionKey: dataKey,
    });
    acknowledge(stream, 'AwsSolutions-KDS3',
      'The stream carries the same payloads as raw/ and is encrypted with the data key, so one key policy decides who can read them; the cost is one KMS call per data key reuse period per shard, not per record.');

    // ------------------------------------------------------------ data lake
    // The name is computed, not read back from the bucket: policies and environment variables
    // that Ref the bucket would form a cycle (bucket -> notification -> function -> role -> bucket).
    const bucketName = s.dataBucketName !== ''
      ? s.dataBucketName
      : Fn.join('-', ['sluice', Aws.ACCOUNT_ID, Aws.REGION, Fn.select(4, Fn.split('-', Fn.select(2, Fn.split('/', Aws.STACK_ID))))]);
    const objects = (prefix: string) => `arn:${Aws.PARTITION}:s3:::${bucketName}/${prefix}/*`;

    const bucket = new s3.Bucket(this, 'DataBucket', {
      bucketName,
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: dataKey,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        {
          id: 'raw-zone',
          prefix: 'raw/',
          transitions: [{ storageClass: s3.StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(30) }],
          expiration: Duration.days(s.rawExpirationDays),
        },
        { id: 'quarantine-zone', prefix: 'quarantine/', expiration: Duration.days(s.quarantineExpirationDays) },
        { id: 'dead-letter-zone', prefix: 'dead-letter/', expiration: Duration.days(s.deadLetterExpirationDays) },
        ...(s.curatedExpirationDays > 0 ? [{ id: 'curated-zone', prefix: 'curated/', expiration: Duration.days(s.curatedExpirationDays) }] : []),
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(7) },
      ],
    });
    acknowledge(bucket, 'AwsSolutions-S1',
      'No server access log bucket: at pipeline request rates access logs cost more than the data; object-level audit is CloudTrail S3 data events on the account/organisation trail.');

    new glue.CfnDatabase(this, 'GlueDatabase', {
      catalogId: Aws.ACCOUNT_ID,
      databaseInput: { name: s.glueDatabaseName, description: 'sluice data lake tables (created and updated by glue-catalog)' },
    });

    const hmacSecret = new secretsmanager.Secret(this, 'HmacSecret', {
      description: 'sluice HMAC key for the `hash` PII rule (read by s3-transform)',
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
    });
    acknowledge(hmacSecret, 'AwsSolutions-SMG4',
      'The HMAC key must stay stable: rotating it changes every hashed PII value and breaks joins on them. Rotate deliberately, with a re-hash, not on a schedule.');

    // ------------------------------------------------------------ failures and alerts
    const alertKey = new kms.Key(this, 'AlertKey', {
      description: 'sluice alert topic encryption (CloudWatch alarms cannot publish to aws/sns topics)',
      enableKeyRotation: true,
    });
    alertKey.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'CloudWatchAlarms',
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      resources: ['*'],
    }));
    const alertTopic = new sns.Topic(this, 'AlertTopic', { displayName: 'sluice alerts', masterKey: alertKey, enforceSSL: true });
    alertTopic.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'CloudWatchAlarms',
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['sns:Publish'],
      resources: [alertTopic.topicArn],
      conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
    }));
    if (s.alertEmail !== '') alertTopic.addSubscription(new subs.EmailSubscription(s.alertEmail));

    const failureDlq = new sqs.Queue(this, 'FailureDeadLetterQueue', {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: dataKey,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    const failureQueue = new sqs.Queue(this, 'FailureQueue', {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: dataKey,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      visibilityTimeout: Duration.seconds(360), // 6 x failure-notifier timeout
      deadLetterQueue: { queue: failureDlq, maxReceiveCount: 5 },
    });

    // ------------------------------------------------------------ network + PostgreSQL
    let vpc: ec2.IVpc;
    let subnets: ec2.SubnetSelection;
    let transformSg: ec2.ISecurityGroup;
    let dbSecret: secretsmanager.ISecret;
    let dbSecretArn: string;
    let cluster: rds.DatabaseCluster | undefined;
    /** SLUICE_DB_HOST: the proxy's endpoint (new mode); empty = the secret's host. */
    let dbHost = '';
    if (newDb) {
      const flowLogGroup = new logs.LogGroup(this, 'FlowLogGroup', { retention: s.logRetentionDays as logs.RetentionDays, removalPolicy: RemovalPolicy.DESTROY });
      const newVpc = new ec2.Vpc(this, 'Vpc', {
        ipAddresses: ec2.IpAddresses.cidr(s.vpcCidr),
        maxAzs: 2,
        natGateways: 0,
        subnetConfiguration: [{ name: 'private', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 20 }],
        gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
        flowLogs: { reject: { trafficType: ec2.FlowLogTrafficType.REJECT, destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogGroup) } },
      });
      vpc = newVpc;
      subnets = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };
      const sg = new ec2.SecurityGroup(this, 'TransformSecurityGroup', {
        vpc, allowAllOutbound: false,
        description: 'sluice s3-transform (egress to PostgreSQL and HTTPS endpoints only)',
      });
      sg.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to the S3 gateway and Secrets Manager endpoints (subnets have no internet route)');
      transformSg = sg;
      const dbSg = new ec2.SecurityGroup(this, 'DatabaseSecurityGroup', {
        vpc, allowAllOutbound: false, description: 'sluice Aurora PostgreSQL (ingress from its proxy and the secret rotation only)',
      });

      const secret = new rds.DatabaseSecret(this, 'DatabaseSecret', { username: 'sluice', dbname: 'sluice', excludeCharacters: '"@/\\ \'`' });
      cluster = new rds.DatabaseCluster(this, 'Database', {
        engine: rds.DatabaseClusterEngine.auroraPostgres({ version: rds.AuroraPostgresEngineVersion.VER_17_9 }),
        credentials: rds.Credentials.fromSecret(secret),
        defaultDatabaseName: 'sluice',
        port: 5432,
        writer: rds.ClusterInstance.serverlessV2('writer', { publiclyAccessible: false, autoMinorVersionUpgrade: true }),
        serverlessV2MinCapacity: s.auroraMinCapacity,
        serverlessV2MaxCapacity: s.auroraMaxCapacity,
        vpc,
        vpcSubnets: subnets,
        securityGroups: [dbSg],
        storageEncrypted: true,
        deletionProtection: s.databaseDeletionProtection,
        backup: { retention: Duration.days(7) },
        copyTagsToSnapshot: true,
        iamAuthentication: true,
        cloudwatchLogsExports: ['postgresql'],
        removalPolicy: RemovalPolicy.SNAPSHOT,
      });
      dbSecret = cluster.secret!;
      dbSecretArn = cluster.secret!.secretArn;

      // RDS Proxy in front of the cluster: it pools connections for Lambda (a spike of S3 events
      // does not become a connection storm on the cluster), and its TLS certificate comes from
      // ACM and chains to Amazon's public roots, which s3-transform verifies with the system
      // roots and the proxy's host name (SLUICE_DB_HOST). Clients authenticate with the secret.
      const proxySg = new ec2.SecurityGroup(this, 'DatabaseProxySecurityGroup', {
        vpc, allowAllOutbound: false, description: 'sluice database proxy (PostgreSQL from s3-transform, to the cluster)',
      });
      proxySg.connections.allowFrom(sg, ec2.Port.tcp(5432), 'PostgreSQL from s3-transform');
      // addProxy admits the proxy into the cluster's security group itself.
      const proxy = cluster.addProxy('DatabaseProxy', {
        dbProxyName: `${Aws.STACK_NAME}-db`,
        secrets: [cluster.secret!],
        vpc, vpcSubnets: subnets, securityGroups: [proxySg],
        requireTLS: true,
        iamAuth: false,
        clientPasswordAuthType: rds.ClientPasswordAuthType.POSTGRES_SCRAM_SHA_256,
        idleClientTimeout: Duration.minutes(30),
        maxConnectionsPercent: 90,
        maxIdleConnectionsPercent: 10,
        borrowTimeout: Duration.seconds(30),
      });
      dbHost = proxy.endpoint;

      const endpointSg = new ec2.SecurityGroup(this, 'EndpointSecurityGroup', {
        vpc, allowAllOutbound: false, description: 'sluice Secrets Manager interface endpoint (HTTPS from s3-transform)',
      });
      endpointSg.connections.allowFrom(sg, ec2.Port.tcp(443), 'HTTPS from s3-transform');
      const smEndpoint = newVpc.addInterfaceEndpoint('SecretsManagerEndpoint', {
        service: ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
        privateDnsEnabled: true,
        securityGroups: [endpointSg],
        open: false,
        subnets,
      });

      // Password rotation of the database secret (single user) by Secrets Manager's hosted
      // rotation function, in the database's subnets. s3-transform reads the secret again when
      // PostgreSQL refuses its password, so warm sandboxes follow a rotation without a cold start.
      const rotationSg = new ec2.SecurityGroup(this, 'DatabaseRotationSecurityGroup', {
        vpc, allowAllOutbound: false,
        description: 'sluice database secret rotation (egress to PostgreSQL and the Secrets Manager endpoint only)',
      });
      dbSg.connections.allowFrom(rotationSg, ec2.Port.tcp(5432), 'PostgreSQL from the secret rotation');
      endpointSg.connections.allowFrom(rotationSg, ec2.Port.tcp(443), 'HTTPS from the secret rotation');
      const rotation = cluster.secret!.addRotationSchedule('DatabaseSecretRotation', {
        hostedRotation: secretsmanager.HostedRotation.postgreSqlSingleUser({
          functionName: `${Aws.STACK_NAME}-db-secret-rotation`,
          vpc, vpcSubnets: subnets, securityGroups: [rotationSg],
        }),
        automaticallyAfter: Duration.days(s.databaseRotationDays),
      });
      rotation.node.addDependency(cluster, smEndpoint);
    } else {
      const azs = s.existingSubnetIds.map((_, i) => Fn.select(i, Fn.getAzs()));
      vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', {
        vpcId: s.existingVpcId,
        availabilityZones: azs,
        privateSubnetIds: s.existingSubnetIds,
        privateSubnetRouteTableIds: s.existingRouteTableIds.length === s.existingSubnetIds.length ? s.existingRouteTableIds : undefined,
      });
      subnets = { subnets: s.existingSubnetIds.map((id, i) => ec2.Subnet.fromSubnetId(this, `Subnet${i}`, id)) };
      transformSg = ec2.SecurityGroup.fromSecurityGroupId(this, 'TransformSecurityGroup', s.existingSecurityGroupId, { mutable: false });
      dbSecret = secretsmanager.Secret.fromSecretCompleteArn(this, 'DatabaseSecret', s.existingDbSecretArn);
      dbSecretArn = s.existingDbSecretArn;
      if (s.existingCreateVpcEndpoints) {
        new ec2.GatewayVpcEndpoint(this, 'S3GatewayEndpoint', {
          vpc, service: ec2.GatewayVpcEndpointAwsService.S3,
          subnets: [{ subnets: s.existingRouteTableIds.map((rt, i) => ec2.Subnet.fromSubnetAttributes(this, `RouteTable${i}`, { subnetId: s.existingSubnetIds[i] ?? s.existingSubnetIds[0], routeTableId: rt })) }],
        });
        const endpointSg = new ec2.SecurityGroup(this, 'EndpointSecurityGroup', {
          vpc, allowAllOutbound: false, description: 'sluice Secrets Manager interface endpoint (HTTPS from s3-transform)',
        });
        endpointSg.addIngressRule(ec2.Peer.securityGroupId(s.existingSecurityGroupId), ec2.Port.tcp(443), 'HTTPS from s3-transform');
        new ec2.InterfaceVpcEndpoint(this, 'SecretsManagerEndpoint', {
          vpc, service: ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
          privateDnsEnabled: true, securityGroups: [endpointSg], open: false, subnets,
        });
      }
    }

    // ------------------------------------------------------------ functions
    const config = `s3://${bucketName}/config/pipeline.toml`;
    const makeFunction = (
      name: FunctionName, logicalId: string, description: string, memorySize: number, timeoutSeconds: number,
      environment: Record<string, string>, extra: Partial<lambda.FunctionProps> = {},
    ): lambda.Function => {
      const logGroup = new logs.LogGroup(this, `${logicalId}LogGroup`, {
        logGroupName: `/sluice/${Aws.STACK_NAME}/${name}`,
        retention: s.logRetentionDays as logs.RetentionDays,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      const role = new iam.Role(this, `${logicalId}Role`, {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
        description: `sluice ${name}`,
      });
      role.addToPolicy(new iam.PolicyStatement({
        sid: 'Logs', actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [logGroup.logGroupArn],
      }));
      role.addToPolicy(new iam.PolicyStatement({ sid: 'DataKey', actions: ['kms:Decrypt', 'kms:GenerateDataKey'], resources: [dataKey.keyArn] }));
      const fn = new lambda.Function(this, logicalId, {
        description,
        runtime: lambda.Runtime.PROVIDED_AL2023,
        architecture: lambda.Architecture.ARM_64,
        handler: 'bootstrap',
        code: code(name),
        role,
        memorySize,
        timeout: Duration.seconds(timeoutSeconds),
        tracing: lambda.Tracing.ACTIVE,
        logGroup,
        environment: { ...environment, RUST_LOG: s.logLevel },
        ...extra,
      });
      Tags.of(fn).add('sluice:function', name);
      acknowledge(role, 'AwsSolutions-IAM5[Resource::*]',
        'X-Ray PutTraceSegments/PutTelemetryRecords (added by tracing: ACTIVE) and, for s3-transform, the ENI actions of VPC attachment support no resource-level permissions.');
      return fn;
    };

    // The failure queue as an on-failure destination (Kinesis ESM and async invocations). The L2
    // destinations grant through the queue's key with wildcard actions (kms:GenerateDataKey*,
    // kms:ReEncrypt*); each role has sqs:SendMessage and the DataKey statement instead.
    const failureDestination: lambda.IDestination & lambda.IEventSourceDlq = {
      bind: () => ({ destination: failureQueue.queueArn }),
    };

    // kinesis-ingest
    const ingest = makeFunction('kinesis-ingest', 'KinesisIngestFunction',
      'Kinesis -> validated gzip NDJSON in raw/ (invalid records to quarantine/)', 1024, 120,
      { SLUICE_CONFIG: config, SLUICE_BUCKET: bucketName, SLUICE_MAX_CONCURRENCY: String(s.ingestMaxConcurrency) });
    ingest.addToRolePolicy(new iam.PolicyStatement({ sid: 'ReadConfig', actions: ['s3:GetObject'], resources: [objects('config')] }));
    ingest.addToRolePolicy(new iam.PolicyStatement({
      sid: 'WriteRawAndQuarantine', actions: ['s3:PutObject', 's3:AbortMultipartUpload'], resources: [objects('raw'), objects('quarantine')],
    }));
    ingest.addEventSource(new sources.KinesisEventSource(stream, {
      startingPosition: lambda.StartingPosition.TRIM_HORIZON,
      batchSize: s.ingestBatchSize,
      maxBatchingWindow: Duration.seconds(s.ingestBatchingWindowSeconds),
      parallelizationFactor: s.ingestParallelizationFactor,
      bisectBatchOnError: true,
      retryAttempts: s.ingestMaximumRetryAttempts,
      maxRecordAge: Duration.seconds(s.ingestMaximumRecordAgeSeconds),
      reportBatchItemFailures: true,
      onFailure: failureDestination,
    }));
    ingest.addToRolePolicy(new iam.PolicyStatement({ sid: 'OnFailureDestination', actions: ['sqs:SendMessage'], resources: [failureQueue.queueArn] }));

    // s3-transform
    const transform = makeFunction('s3-transform', 'S3TransformFunction',
      'raw/ NDJSON -> typed, PII-masked Parquet in curated/ + upsert into PostgreSQL', 2048, 300,
      {
        SLUICE_CONFIG: config,
        SLUICE_BUCKET: bucketName,
        SLUICE_DB_SECRET_ARN: dbSecretArn,
        SLUICE_DB_TLS: 'require',
        SLUICE_DB_HOST: dbHost,
        SLUICE_HMAC_SECRET_ARN: hmacSecret.secretArn,
      },
      {
        vpc, vpcSubnets: subnets, securityGroups: [transformSg], allowPublicSubnet: false,
        reservedConcurrentExecutions: s.transformReservedConcurrency > 0 ? s.transformReservedConcurrency : undefined,
      });
    transform.addToRolePolicy(new iam.PolicyStatement({ sid: 'ReadRawAndConfig', actions: ['s3:GetObject'], resources: [objects('raw'), objects('config')] }));
    transform.addToRolePolicy(new iam.PolicyStatement({
      sid: 'WriteCuratedAndQuarantine', actions: ['s3:PutObject', 's3:AbortMultipartUpload'], resources: [objects('curated'), objects('quarantine')],
    }));
    transform.addToRolePolicy(new iam.PolicyStatement({
      sid: 'ReadSecrets', actions: ['secretsmanager:GetSecretValue'], resources: [dbSecret.secretArn, hmacSecret.secretArn],
    }));
    if (cluster) transform.node.addDependency(cluster);

    // glue-catalog
    const catalog = makeFunction('glue-catalog', 'GlueCatalogFunction',
      'curated/ objects -> Glue tables and partitions', 512, 60,
      { SLUICE_CONFIG: config, SLUICE_BUCKET: bucketName },
      { reservedConcurrentExecutions: s.catalogReservedConcurrency > 0 ? s.catalogReservedConcurrency : undefined });
    catalog.addToRolePolicy(new iam.PolicyStatement({
      sid: 'ReadZonesAndConfig', actions: ['s3:GetObject'], resources: [objects('curated'), objects('raw'), objects('config')],
    }));
    const glueArn = (r: string) => `arn:${Aws.PARTITION}:glue:${Aws.REGION}:${Aws.ACCOUNT_ID}:${r}`;
    catalog.addToRolePolicy(new iam.PolicyStatement({
      sid: 'GlueCatalog',
      actions: ['glue:GetDatabase', 'glue:CreateDatabase', 'glue:GetTable', 'glue:CreateTable', 'glue:UpdateTable', 'glue:BatchCreatePartition', 'glue:GetPartitions'],
      resources: [glueArn('catalog'), glueArn(`database/${s.glueDatabaseName}`), glueArn(`table/${s.glueDatabaseName}/*`)],
    }));
    acknowledge(catalog.role!, `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:table/${s.glueDatabaseName}/*]`,
      'Tables are created at run time from the pipeline config (one per dataset), so they cannot be listed here; the wildcard is confined to the pipeline\'s own database.');

    // failure-notifier
    const notifier = makeFunction('failure-notifier', 'FailureNotifierFunction',
      'failure queue -> recovered records in dead-letter/ + SNS alert', 512, 60,
      { SLUICE_BUCKET: bucketName, SLUICE_ALERT_TOPIC_ARN: alertTopic.topicArn });
    notifier.addToRolePolicy(new iam.PolicyStatement({
      sid: 'RecoverFailedBatches', actions: ['kinesis:DescribeStream', 'kinesis:GetShardIterator', 'kinesis:GetRecords'], resources: [stream.streamArn],
    }));
    notifier.addToRolePolicy(new iam.PolicyStatement({
      sid: 'WriteDeadLetter', actions: ['s3:PutObject', 's3:AbortMultipartUpload'], resources: [objects('dead-letter')],
    }));
    alertTopic.grantPublish(notifier);
    acknowledge(notifier.role!, 'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]',
      'Publishing to the KMS-encrypted alert topic needs GenerateDataKey* (added by topic.grantPublish); the statement is scoped to the alert key alone.');
    notifier.addEventSource(new sources.SqsEventSource(failureQueue, { batchSize: 10, reportBatchItemFailures: true }));

    // http-collector: the HTTP front door. API keys live in one secret, a JSON object of producer
    // name -> key; the generated entry is named api_key because that is what Firehose's own
    // Secrets Manager integration reads, so one secret serves a Firehose stream and the function.
    const keysSecret = new secretsmanager.Secret(this, 'CollectorKeysSecret', {
      secretName: `/sluice/${Aws.STACK_NAME}/collector-keys`,
      description: 'sluice http-collector API keys (JSON object of producer name -> key; read by http-collector)',
      generateSecretString: { secretStringTemplate: '{}', generateStringKey: 'api_key', passwordLength: 40, excludePunctuation: true },
    });
    acknowledge(keysSecret, 'AwsSolutions-SMG4',
      'API keys are rotated by hand without downtime: add a new entry, move the producer (or the Firehose access key) to it, delete the old entry; http-collector re-reads the secret within SLUICE_COLLECTOR_KEYS_TTL_SECS (300 s). A rotation Lambda cannot move producers.');
    const collector = makeFunction('http-collector', 'HttpCollectorFunction',
      'HTTP API (JSON/NDJSON events, Firehose HTTP deliveries) -> Kinesis PutRecords', 256, 15,
      {
        SLUICE_COLLECTOR_STREAM: stream.streamName,
        SLUICE_COLLECTOR_KEYS_SECRET: keysSecret.secretArn,
        SLUICE_COLLECTOR_PARTITION_KEY: s.collectorPartitionKey, // empty = a hash of the record
        SLUICE_COLLECTOR_MAX_BODY_BYTES: String(s.collectorMaxBodyBytes),
        SLUICE_COLLECTOR_DEADLINE_MS: '10000', // below the timeout and the integration timeout
        SLUICE_COLLECTOR_KEYS_TTL_SECS: '300', // a key change takes effect within this
      });
    collector.addToRolePolicy(new iam.PolicyStatement({ sid: 'WriteStream', actions: ['kinesis:PutRecords'], resources: [stream.streamArn] }));
    collector.addToRolePolicy(new iam.PolicyStatement({ sid: 'ReadKeys', actions: ['secretsmanager:GetSecretValue'], resources: [keysSecret.secretArn] }));

    const accessLogGroup = new logs.LogGroup(this, 'CollectorAccessLogGroup', {
      logGroupName: `/sluice/${Aws.STACK_NAME}/http-collector-access`,
      retention: s.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const api = new apigwv2.HttpApi(this, 'CollectorApi', {
      apiName: Aws.STACK_NAME,
      description: 'sluice http-collector (POST /v1/events, POST /v1/firehose)',
      createDefaultStage: false, // added below with throttling and access logs
      corsPreflight: s.collectorCorsOrigins.length > 0 ? {
        allowOrigins: s.collectorCorsOrigins,
        allowMethods: [apigwv2.CorsHttpMethod.POST],
        allowHeaders: ['content-type', 'content-encoding', 'authorization', 'x-api-key'],
        maxAge: Duration.seconds(600),
      } : undefined,
    });
    api.addStage('DefaultStage', {
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: s.collectorRateLimit, burstLimit: s.collectorBurstLimit },
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(accessLogGroup),
        format: AccessLogFormat.custom(JSON.stringify(COLLECTOR_ACCESS_LOG_FORMAT)),
      },
    });
    const collectorIntegration = new HttpLambdaIntegration('CollectorIntegration', collector, {
      payloadFormatVersion: apigwv2.PayloadFormatVersion.VERSION_2_0,
      timeout: Duration.seconds(15), // >= SLUICE_COLLECTOR_DEADLINE_MS
    });
    for (const route of COLLECTOR_ROUTES) api.addRoutes({ path: route, methods: [apigwv2.HttpMethod.POST], integration: collectorIntegration });
    // No API Gateway authorizer on the routes (cdk-nag's COG4 covers REST methods only, so APIG4 is the finding).
    acknowledge(api, 'AwsSolutions-APIG4',
      'API keys are verified by the function against Secrets Manager in constant time; Firehose HTTP delivery can only send a static access-key header.');

    // Object prefixes in IAM statements: one acknowledgement per role, per prefix it uses.
    const prefixReason = 'Object-level actions on one zone prefix of the pipeline bucket (object keys are data-dependent); no bucket-wide or cross-bucket access.';
    // cdk-nag names a finding by the flattened resource, e.g. arn:<AWS::Partition>:s3:::<name>/raw/*
    const prefixFinding = (prefix: string) => `AwsSolutions-IAM5[Resource::${flattenCfnReference(this.resolve(objects(prefix)))}]`;
    for (const [fn, prefixes] of [
      [ingest, ['config', 'raw', 'quarantine']],
      [transform, ['raw', 'config', 'curated', 'quarantine']],
      [catalog, ['curated', 'raw', 'config']],
      [notifier, ['dead-letter']],
    ] as const) {
      for (const p of prefixes) acknowledge(fn.role!, prefixFinding(p), prefixReason);
    }

    // Async (S3-triggered) invocations: bounded retries, then the shared failure queue.
    for (const fn of [transform, catalog]) {
      fn.configureAsyncInvoke({
        retryAttempts: s.asyncMaximumRetryAttempts,
        maxEventAge: Duration.seconds(s.asyncMaximumEventAgeSeconds),
        onFailure: failureDestination,
      });
      fn.addToRolePolicy(new iam.PolicyStatement({ sid: 'OnFailureDestination', actions: ['sqs:SendMessage'], resources: [failureQueue.queueArn] }));
    }

    // S3 notifications, written as in the SAM template (no custom-resource Lambda). glue-catalog
    // also understands raw/ objects, but S3 rejects overlapping prefixes for one event type and
    // raw/ goes to s3-transform (infra/README.md).
    const cfnBucket = bucket.node.defaultChild as s3.CfnBucket;
    const notifications: s3.CfnBucket.LambdaConfigurationProperty[] = [];
    for (const [fn, prefix, id] of [[transform, 'raw/', 'RawObjectCreated'], [catalog, 'curated/', 'CuratedObjectCreated']] as const) {
      const permission = new lambda.CfnPermission(this, `${id}Permission`, {
        action: 'lambda:InvokeFunction',
        functionName: fn.functionArn,
        principal: 's3.amazonaws.com',
        sourceAccount: Aws.ACCOUNT_ID,
        sourceArn: `arn:${Aws.PARTITION}:s3:::${bucketName}`,
      });
      cfnBucket.addResourceDependency(permission);
      notifications.push({ event: 's3:ObjectCreated:*', function: fn.functionArn, filter: { s3Key: { rules: [{ name: 'prefix', value: prefix }] } } });
    }
    cfnBucket.notificationConfiguration = { lambdaConfigurations: notifications };

    this.functions = { 'kinesis-ingest': ingest, 's3-transform': transform, 'glue-catalog': catalog, 'failure-notifier': notifier, 'http-collector': collector };

    // ------------------------------------------------------------ alarms and dashboard
    const alarmAction = new cwActions.SnsAction(alertTopic);
    const alarm = (id: string, description: string, metric: cloudwatch.IMetric, threshold: number, evaluationPeriods = 1, datapointsToAlarm?: number) => {
      const a = new cloudwatch.Alarm(this, id, {
        alarmDescription: description, metric, threshold, evaluationPeriods, datapointsToAlarm,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      a.addAlarmAction(alarmAction);
      a.addOkAction(alarmAction);
      return a;
    };
    alarm('IngestIteratorAgeAlarm', 'kinesis-ingest is falling behind the stream (iterator age)',
      ingest.metric('IteratorAge', { statistic: 'Maximum', period: Duration.minutes(1) }), s.iteratorAgeAlarmMs, 5, 3);
    alarm('IngestErrorsAlarm', 'kinesis-ingest invocations failed', ingest.metricErrors({ statistic: 'Sum', period: Duration.minutes(5) }), 0);
    alarm('TransformErrorsAlarm', 's3-transform invocations failed', transform.metricErrors({ statistic: 'Sum', period: Duration.minutes(5) }), 0);
    alarm('CatalogErrorsAlarm', 'glue-catalog invocations failed', catalog.metricErrors({ statistic: 'Sum', period: Duration.minutes(5) }), 0);
    alarm('NotifierErrorsAlarm', 'failure-notifier invocations failed', notifier.metricErrors({ statistic: 'Sum', period: Duration.minutes(5) }), 0);
    alarm('CollectorErrorsAlarm', 'http-collector invocations failed', collector.metricErrors({ statistic: 'Sum', period: Duration.minutes(5) }), 0);
    alarm('CollectorServerErrorsAlarm', 'the collector API answered 5xx (records not written to Kinesis, or the function failed)',
      api.metricServerError({ statistic: 'Sum', period: Duration.minutes(5) }), 0);
    alarm('FailureQueueDepthAlarm', 'failed batches or S3 events are waiting in the failure queue',
      failureQueue.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: Duration.minutes(5) }), 0);
    alarm('FailureDeadLetterDepthAlarm', 'failure-notifier could not handle a failure message (dead-letter queue)',
      failureDlq.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: Duration.minutes(5) }), 0);
    const emf = (metricName: string) => new cloudwatch.Metric({
      namespace: 'sluice', metricName, dimensionsMap: { function: 'kinesis-ingest' }, statistic: 'Sum', period: Duration.minutes(5),
    });
    alarm('QuarantinedRecordsAlarm', 'kinesis-ingest is quarantining records (EMF metric sluice/RecordsQuarantined)',
      emf('RecordsQuarantined'), s.quarantinedRecordsAlarmThreshold);
    const emfOf = (fn: string, metricName: string, statistic = 'Sum') => new cloudwatch.Metric({
      namespace: 'sluice', metricName, dimensionsMap: { function: fn }, statistic, period: Duration.minutes(5),
    });
    alarm('TransformRejectedRowsAlarm', 's3-transform is rejecting rows to the quarantine (EMF metric sluice/RowsRejected; the dataset dimension names which)',
      emfOf('s3-transform', 'RowsRejected'), s.rejectedRowsAlarmThreshold);
    alarm('DatabaseConnectionErrorsAlarm', 's3-transform could not reach PostgreSQL (connect, TLS, authentication or a broken connection; EMF metric sluice/DatabaseConnectionErrors)',
      emfOf('s3-transform', 'DatabaseConnectionErrors'), 0);
    alarm('PartitionsFailedAlarm', 'glue-catalog could not register partitions (EMF metric sluice/PartitionsFailed; Athena does not see that data yet)',
      emfOf('glue-catalog', 'PartitionsFailed'), 0);
    alarm('WarehouseFreshnessAlarm', 'for 15 minutes even the newest rows loaded into PostgreSQL are older than FreshnessAlarmMs (EMF metric sluice/FreshnessWarehouse; per dataset on the dashboard)',
      emfOf('s3-transform', 'FreshnessWarehouse', 'Minimum'), s.freshnessAlarmMs, 3, 3);
    const throttled: [string, lambda.IFunction, string][] = [
      ['IngestThrottlesAlarm', ingest, 'kinesis-ingest'], ['TransformThrottlesAlarm', transform, 's3-transform'],
      ['CatalogThrottlesAlarm', catalog, 'glue-catalog'], ['NotifierThrottlesAlarm', notifier, 'failure-notifier'],
      ['CollectorThrottlesAlarm', collector, 'http-collector'],
    ];
    for (const [id, fn, name] of throttled) {
      alarm(id, `${name} invocations were throttled (concurrency limit reached)`, fn.metricThrottles({ statistic: 'Sum', period: Duration.minutes(5) }), 0);
    }
    for (const [id, name] of [['IngestConfigRejectedAlarm', 'kinesis-ingest'], ['TransformConfigRejectedAlarm', 's3-transform'], ['CatalogConfigRejectedAlarm', 'glue-catalog']]) {
      alarm(id, `${name} refused a new version of the pipeline config and keeps running the previous one (EMF metric sluice/ConfigRejected; the reason is in its log)`,
        emfOf(name, 'ConfigRejected'), 0);
    }
    // Per-dataset series: one line per dataset that has published the metric.
    const perDataset = (metricName: string, statistic: string) => new cloudwatch.MathExpression({
      expression: `SEARCH('{sluice,dataset,function} MetricName="${metricName}"', '${statistic}', 300)`,
      usingMetrics: {}, label: '', period: Duration.minutes(5),
    });

    const fns = [ingest, transform, catalog, collector];
    new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `${Aws.STACK_NAME}-sluice`,
      widgets: [
        [
          new cloudwatch.GraphWidget({
            title: 'Stream in / iterator age', width: 12,
            left: [stream.metricIncomingRecords({ statistic: 'Sum', period: Duration.minutes(1) })],
            right: [ingest.metric('IteratorAge', { statistic: 'Maximum', period: Duration.minutes(1) })],
          }),
          new cloudwatch.GraphWidget({
            title: 'Records (EMF)', width: 12,
            left: ['RecordsIn', 'RecordsWritten', 'RecordsQuarantined', 'RecordsFailed'].map((m) => emf(m).with({ period: Duration.minutes(1) })),
          }),
        ],
        [
          new cloudwatch.GraphWidget({ title: 'Errors', width: 12, left: [...fns, notifier].map((f) => f.metricErrors({ statistic: 'Sum', period: Duration.minutes(5) })) }),
          new cloudwatch.GraphWidget({
            title: 'Concurrency', width: 12,
            left: fns.map((f) => f.metric('ConcurrentExecutions', { statistic: 'Maximum', period: Duration.minutes(1) })),
            right: [transform.metricThrottles({ statistic: 'Sum', period: Duration.minutes(1) })],
          }),
        ],
        [
          new cloudwatch.GraphWidget({ title: 'Duration p99', width: 12, left: fns.map((f) => f.metricDuration({ statistic: 'p99', period: Duration.minutes(5) })) }),
          new cloudwatch.GraphWidget({
            title: 'Failure queues', width: 12,
            left: [failureQueue, failureDlq].map((q) => q.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: Duration.minutes(1) })),
          }),
        ],
        [
          new cloudwatch.GraphWidget({
            title: 'HTTP collector', width: 12,
            left: [api.metricCount({ statistic: 'Sum' }), api.metricClientError(), api.metricServerError()].map((m) => m.with({ period: Duration.minutes(1) })),
            right: [api.metricIntegrationLatency({ statistic: 'p99', period: Duration.minutes(1) })],
          }),
          new cloudwatch.GraphWidget({
            title: 'Throttles and database connection errors', width: 12,
            left: [...[ingest, transform, catalog, collector, notifier].map((f) => f.metricThrottles({ statistic: 'Sum', period: Duration.minutes(5) })),
              emfOf('s3-transform', 'DatabaseConnectionErrors')],
          }),
        ],
        [
          new cloudwatch.GraphWidget({ title: 'Freshness per dataset: event time to PostgreSQL (ms, newest row)', width: 12, left: [perDataset('FreshnessWarehouse', 'Minimum')] }),
          new cloudwatch.GraphWidget({
            title: 'Freshness per dataset: event time to raw and curated (ms, newest record)', width: 12,
            left: [perDataset('FreshnessRaw', 'Minimum'), perDataset('FreshnessCurated', 'Minimum')],
          }),
        ],
        [
          new cloudwatch.GraphWidget({
            title: 'Rows per dataset: curated, rejected, quarantined at ingest', width: 12,
            left: ['RowsCurated', 'RowsRejected', 'RecordsQuarantined'].map((m) => perDataset(m, 'Sum')),
          }),
          new cloudwatch.GraphWidget({
            title: 'Glue partitions per dataset: registered, failed', width: 12,
            left: ['PartitionsRegistered', 'PartitionsFailed'].map((m) => perDataset(m, 'Sum')),
          }),
        ],
      ],
    });

    // ------------------------------------------------------------ outputs
    new CfnOutput(this, 'StreamName', { value: stream.streamName, description: 'Kinesis stream producers write to' });
    new CfnOutput(this, 'DataBucketName', { value: bucketName, description: 'Data bucket; upload the pipeline config to s3://<bucket>/config/pipeline.toml' });
    new CfnOutput(this, 'GlueDatabaseName', { value: s.glueDatabaseName });
    new CfnOutput(this, 'AlertTopicArn', { value: alertTopic.topicArn });
    new CfnOutput(this, 'FailureQueueUrl', { value: failureQueue.queueUrl });
    new CfnOutput(this, 'DatabaseSecretArn', { value: dbSecretArn });
    if (cluster) new CfnOutput(this, 'DatabaseEndpoint', { value: cluster.clusterEndpoint.hostname });
    if (cluster) new CfnOutput(this, 'DatabaseProxyEndpoint', { value: dbHost, description: 'RDS Proxy endpoint s3-transform connects to (SLUICE_DB_HOST)' });
    new CfnOutput(this, 'HmacSecretArn', { value: hmacSecret.secretArn });
    new CfnOutput(this, 'DataKeyArn', {
      value: dataKey.keyArn,
      description: 'KMS key of the bucket, stream and queues; readers of the lake and producers need kms:Decrypt / kms:GenerateDataKey on it',
    });
    new CfnOutput(this, 'S3TransformFunctionName', {
      value: transform.functionName,
      description: 'Function `sluice backfill --function` invokes',
    });
    new CfnOutput(this, 'CollectorUrl', {
      value: `${api.apiEndpoint}/v1/events`,
      description: 'http-collector endpoint for JSON/NDJSON events (Firehose HTTP deliveries go to /v1/firehose)',
    });
    new CfnOutput(this, 'CollectorKeysSecretArn', {
      value: keysSecret.secretArn,
      description: 'Secret holding the collector\'s API keys (producer name -> key; api_key is the one Firehose reads)',
    });
  }
}

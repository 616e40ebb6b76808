#!/usr/bin/env node
/**
 * The CDK app: one SluiceStack, checked by cdk-nag's AwsSolutions pack at synth time.
 *   CDK_DISABLE_VERSION_CHECK=1 npx cdk synth             (after `make build`)
 *   npx cdk deploy -c sluice:alertEmail=ops@example.com   (settings: lib/settings.ts)
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { settingsFromContext } from '../lib/settings';
import { SluiceStack } from '../lib/sluice-stack';

const app = new App();
const stackName = app.node.tryGetContext('sluice:stackName') ?? 'sluice';
new SluiceStack(app, 'Sluice', {
  stackName,
  description: 'sluice - serverless data pipeline (Kinesis -> S3 -> PostgreSQL + Glue), CDK edition',
  settings: settingsFromContext(app.node),
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
app.synth();

#!/usr/bin/env python3
"""Check that the SAM template and the CDK stack declare the same pipeline.

    compare_stacks.py infra/sam/template.yaml infra/cdk/cdk.out/Sluice.template.json

The SAM template is expanded with the SAM translator (offline), its parameters resolved to their
defaults; the CDK template is the `cdk synth` output with default context. Then both are reduced
to what the functions see and how they are driven, and compared:

- the functions (by their `sluice:function` tag): runtime, architecture, handler, memory,
  timeout, tracing, VPC attachment, environment variable names and literal values;
- event source mappings: source kind and every batching / retry / failure setting;
- async invoke configs: retries, event age, on-failure destination kind;
- S3 notifications: event + prefix -> function;
- alarms: namespace/metric/statistic/period/threshold/dimensions;
- encryption at rest of the stream, queues and bucket (algorithm, which key, S3 Bucket Keys) and
  the bucket's lifecycle rules;
- HTTP APIs: routes -> function (integration type, payload format, timeout, whether an
  authorizer is attached; SAM's OpenAPI body vs CDK's Route/Integration resources), CORS, and
  each stage's name, auto-deploy, default-route throttling and access log (destination kind and
  the JSON format's fields);
- secret rotation schedules: the secret's kind, the hosted rotation type, its VPC attachment,
  the characters it excludes and the schedule; and the template's macros besides SAM's;
- the set of resource types (minus CDK bookkeeping).

Needs aws-sam-translator (installed with aws-sam-cli in infra/.venv). Exits 1 on a difference.
"""
from __future__ import annotations

import copy
import json
import os
import re
import sys
from collections import Counter
from typing import Any

NON_LITERAL = "<>"


def load_sam(path: str) -> dict:
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    with open(path, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    original = copy.deepcopy(template)
    for res in template["Resources"].values():
        if res["Type"] == "AWS::Serverless::Function":
            # The translator wants an S3 location; `sam build`/`package` put one there.
            res["Properties"]["CodeUri"] = "s3://placeholder/code.zip"

    class _NoManagedPolicies:
        def load(self) -> dict:
            return {}

    # CloudFormation hands the transform a CommaDelimitedList as a list; left to itself, the
    # translator would substitute the default string where SAM resolves parameters (CORS origins).
    lists = {name: p["Default"].split(",") for name, p in template.get("Parameters", {}).items()
             if p.get("Type") == "CommaDelimitedList" and isinstance(p.get("Default"), str)}
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    out = transform(template, lists, _NoManagedPolicies())
    out.setdefault("Parameters", original.get("Parameters", {}))
    # The translator expands only its own macro; the others stay for CloudFormation to run.
    out["Transform"] = original.get("Transform", [])
    out.setdefault("Conditions", original.get("Conditions", {}))
    return out


class Resolver:
    """Evaluates a template's intrinsics with parameter defaults; anything unknowable -> "<>"."""

    def __init__(self, template: dict):
        self.t = template
        self.params = {}
        for name, p in template.get("Parameters", {}).items():
            if "Default" in p:
                d = p["Default"]
                if p.get("Type") == "Number":
                    d = float(d)
                    d = int(d) if d.is_integer() else d
                elif p.get("Type") == "CommaDelimitedList" and isinstance(d, str):
                    d = d.split(",")
                self.params[name] = d
        self.conditions = template.get("Conditions", {})

    def condition(self, name: str) -> bool:
        return bool(self.value(self.conditions[name]))

    def value(self, v: Any) -> Any:
        if isinstance(v, list):
            return [self.value(x) for x in v if not (isinstance(x, dict) and x.get("Ref") == "AWS::NoValue")]
        if not isinstance(v, dict):
            return v
        if len(v) == 1:
            (k, a), = v.items()
            if k == "Ref" and a == "AWS::NoValue":
                return None
            if k == "Ref":
                return self.params.get(a, NON_LITERAL) if not a.startswith("AWS::") else NON_LITERAL
            if k == "Fn::If":
                cond, yes, no = a
                return self.value(yes if self.condition(cond) else no)
            if k == "Condition":
                return self.condition(a)
            if k == "Fn::Equals":
                x, y = (self.value(i) for i in a)
                return NON_LITERAL if NON_LITERAL in (x, y) else str(x) == str(y)
            if k == "Fn::Not":
                return not self.value(a[0])
            if k == "Fn::And":
                return all(self.value(i) for i in a)
            if k == "Fn::Or":
                return any(self.value(i) for i in a)
            if k == "Fn::Join":
                sep, parts = a
                # The parts may be one reference to a list (e.g. a CommaDelimitedList parameter).
                items = [self.value(p) for p in parts] if isinstance(parts, list) else self.value(parts)
                if not isinstance(items, list):
                    return NON_LITERAL
                return normalize(sep.join(str(i) for i in items))
            if k == "Fn::Sub":
                text = a if isinstance(a, str) else a[0]

                def sub(m: re.Match) -> str:
                    name = m.group(1)
                    val = self.params.get(name, NON_LITERAL)
                    return str(val)

                return normalize(re.sub(r"\$\{([^}!]+)\}", sub, text))
            if k in ("Fn::GetAtt", "Fn::Select", "Fn::Split", "Fn::GetAZs", "Fn::ImportValue", "Fn::Cidr"):
                return NON_LITERAL
        return {k: self.value(x) for k, x in v.items() if not (isinstance(x, dict) and x.get("Ref") == "AWS::NoValue")}


def normalize(s: str) -> str:
    """Collapses any path/ARN segment with a non-literal part into "<>" (names differ by design)."""
    if NON_LITERAL not in s:
        return s
    return re.sub(r"[^/:]*<>[^/:]*", NON_LITERAL, s)


def ref_target(v: Any) -> str | None:
    if isinstance(v, dict):
        if "Ref" in v:
            return v["Ref"]
        if "Fn::GetAtt" in v:
            ga = v["Fn::GetAtt"]
            return ga[0] if isinstance(ga, list) else ga.split(".")[0]
    return None


def summarize(t: dict) -> dict:
    r = Resolver(t)
    res = t["Resources"]
    active = {k: v for k, v in res.items() if "Condition" not in v or r.condition(v["Condition"])}

    fn_names: dict[str, str] = {}
    for lid, v in active.items():
        if v["Type"] == "AWS::Lambda::Function":
            tags = {tag["Key"]: tag["Value"] for tag in v["Properties"].get("Tags", [])}
            if "sluice:function" not in tags:
                raise SystemExit(f"function {lid} has no sluice:function tag")
            fn_names[lid] = tags["sluice:function"]

    def fn_of(v: Any) -> str:
        target = ref_target(v)
        if target in fn_names:
            return fn_names[target]
        return f"?{json.dumps(v)}"

    def kind_of(v: Any) -> str:
        target = ref_target(v)
        return active[target]["Type"] if target in active else f"?{json.dumps(v)}"

    functions = {}
    for lid, name in fn_names.items():
        p = r.value(active[lid]["Properties"])
        functions[name] = {
            "Runtime": p.get("Runtime"),
            "Architectures": p.get("Architectures"),
            "Handler": p.get("Handler"),
            "MemorySize": p.get("MemorySize"),
            "Timeout": p.get("Timeout"),
            "Tracing": p.get("TracingConfig", {}).get("Mode"),
            "InVpc": "VpcConfig" in p,
            "ReservedConcurrentExecutions": p.get("ReservedConcurrentExecutions"),
            # CloudFormation passes every environment value as a string.
            "Environment": {k: str(x) for k, x in p.get("Environment", {}).get("Variables", {}).items()},
            "HasLogGroup": bool(p.get("LoggingConfig", {}).get("LogGroup")),
        }

    mappings = []
    for lid, v in active.items():
        if v["Type"] == "AWS::Lambda::EventSourceMapping":
            raw = v["Properties"]
            p = r.value(raw)
            dest = raw.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            mappings.append({
                "Function": fn_of(raw["FunctionName"]),
                "Source": kind_of(raw["EventSourceArn"]),
                "OnFailure": kind_of(dest) if dest else None,
                **{k: p.get(k) for k in (
                    "BatchSize", "MaximumBatchingWindowInSeconds", "ParallelizationFactor", "BisectBatchOnFunctionError",
                    "MaximumRetryAttempts", "MaximumRecordAgeInSeconds", "FunctionResponseTypes", "StartingPosition")},
            })
    # Lambda's defaults, so "unset" and "set to the default" compare equal.
    for m in mappings:
        if m["Source"] == "AWS::SQS::Queue" and m["MaximumBatchingWindowInSeconds"] in (None, 0):
            m["MaximumBatchingWindowInSeconds"] = 0

    invoke_configs = {}
    for lid, v in active.items():
        if v["Type"] == "AWS::Lambda::EventInvokeConfig":
            raw = v["Properties"]
            p = r.value(raw)
            dest = raw.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            invoke_configs[fn_of(raw["FunctionName"])] = {
                "Qualifier": p.get("Qualifier"),
                "MaximumRetryAttempts": p.get("MaximumRetryAttempts"),
                "MaximumEventAgeInSeconds": p.get("MaximumEventAgeInSeconds"),
                "OnFailure": kind_of(dest) if dest else None,
            }

    notifications = []
    for lid, v in active.items():
        if v["Type"] == "AWS::S3::Bucket":
            for c in v["Properties"].get("NotificationConfiguration", {}).get("LambdaConfigurations", []):
                rules = {x["Name"].lower(): x["Value"] for x in c.get("Filter", {}).get("S3Key", {}).get("Rules", [])}
                notifications.append((c["Event"], rules.get("prefix"), rules.get("suffix"), fn_of(c["Function"])))

    def key_of(v: Any) -> str | None:
        """A KMS key reference as the key's description; an alias or ARN text as itself."""
        if v is None or isinstance(v, str):
            return v
        target = ref_target(v)
        if target in active and active[target]["Type"] == "AWS::KMS::Key":
            return f"key: {active[target]['Properties'].get('Description')}"
        return f"?{json.dumps(v)}"

    at_rest = []
    lifecycle = []
    for lid, v in active.items():
        p = v.get("Properties", {})
        if v["Type"] == "AWS::Kinesis::Stream":
            enc = p.get("StreamEncryption", {})
            at_rest.append(("stream", enc.get("EncryptionType"), key_of(enc.get("KeyId"))))
        elif v["Type"] == "AWS::SQS::Queue":
            kind = "SQS-managed" if r.value(p.get("SqsManagedSseEnabled")) else "KMS"
            at_rest.append(("queue", kind, key_of(p.get("KmsMasterKeyId"))))
        elif v["Type"] == "AWS::S3::Bucket":
            for c in p.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", []):
                d = c.get("ServerSideEncryptionByDefault", {})
                at_rest.append(("bucket", d.get("SSEAlgorithm"), key_of(d.get("KMSMasterKeyID")),
                                f"bucket key {bool(r.value(c.get('BucketKeyEnabled')))}"))
            rules = [x for x in r.value(p.get("LifecycleConfiguration", {}).get("Rules", [])) if x]
            lifecycle.extend(sorted(
                (x.get("Id"), x.get("Prefix"), x.get("Status"), x.get("ExpirationInDays"),
                 json.dumps(x.get("Transitions"), sort_keys=True), json.dumps(x.get("AbortIncompleteMultipartUpload"), sort_keys=True))
                for x in rules))

    alarms = []
    for lid, v in active.items():
        if v["Type"] == "AWS::CloudWatch::Alarm":
            raw = v["Properties"]
            p = r.value(raw)
            dims = tuple(sorted(
                (d["Name"], fn_of(d["Value"]) if ref_target(d["Value"]) in fn_names else (kind_of(d["Value"]) if ref_target(d["Value"]) else d["Value"]))
                for d in raw.get("Dimensions", [])))
            alarms.append((p.get("Namespace"), p.get("MetricName"), p.get("Statistic"), p.get("Period"),
                           p.get("Threshold"), p.get("EvaluationPeriods"), p.get("ComparisonOperator"), dims))

    http_apis = summarize_http_apis(active, r, fn_names, kind_of)

    rotations = []
    for lid, v in active.items():
        if v["Type"] == "AWS::SecretsManager::RotationSchedule":
            raw = v["Properties"]
            p = r.value(raw)
            hosted = raw.get("HostedRotationLambda", {})
            rotations.append({
                "Secret": kind_of(raw["SecretId"]),
                "RotationType": hosted.get("RotationType"),
                "InVpc": bool(hosted.get("VpcSubnetIds")) and bool(hosted.get("VpcSecurityGroupIds")),
                "ExcludeCharacters": hosted.get("ExcludeCharacters"),
                "Schedule": p.get("RotationRules", {}).get("ScheduleExpression"),
            })
    transforms = t.get("Transform", [])
    macros = sorted(x for x in (transforms if isinstance(transforms, list) else [transforms])
                    if x != "AWS::Serverless-2016-10-31")

    # Routes and integrations are separate resources in CDK and part of the OpenAPI body in SAM:
    # they are compared in http_apis.
    ignore_types = {"AWS::CDK::Metadata", "AWS::IAM::Policy", "AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress",
                    "AWS::ApiGatewayV2::Route", "AWS::ApiGatewayV2::Integration"}
    types = sorted({v["Type"] for v in active.values()} - ignore_types)

    return {
        "functions": functions,
        "event_source_mappings": sorted(mappings, key=lambda m: (m["Function"], m["Source"])),
        "async_invoke_configs": invoke_configs,
        "s3_notifications": sorted(notifications),
        "alarms": sorted(alarms, key=repr),
        "encryption_at_rest": sorted(at_rest, key=repr),
        "lifecycle_rules": lifecycle,
        "http_apis": http_apis,
        "secret_rotations": sorted(rotations, key=repr),
        "macros": macros,
        "resource_types": types,
    }


def summarize_http_apis(active: dict, r: Resolver, fn_names: dict[str, str], kind_of) -> list[dict]:
    """Each HTTP API as routes -> function, CORS and stages, whichever way it is written."""

    def chosen(v: Any) -> Any:
        # A top-level Fn::If (SAM wraps conditional operations in one): the branch that applies.
        while isinstance(v, dict) and set(v) == {"Fn::If"}:
            cond, yes, no = v["Fn::If"]
            v = yes if r.condition(cond) else no
        return None if isinstance(v, dict) and v.get("Ref") == "AWS::NoValue" else v

    def function_of_uri(uri: Any) -> str:
        # SAM: Fn::Sub ".../functions/${Fn.Arn}/invocations"; CDK: Fn::GetAtt [Fn, Arn].
        target = ref_target(uri)
        if target is None and isinstance(uri, dict) and "Fn::Sub" in uri:
            text = uri["Fn::Sub"] if isinstance(uri["Fn::Sub"], str) else uri["Fn::Sub"][0]
            m = re.search(r"/functions/\$\{([A-Za-z0-9]+)\.Arn\}/invocations", text)
            target = m.group(1) if m else None
        return fn_names.get(target, f"?{json.dumps(uri)}")

    def cors_of(v: Any) -> dict | None:
        v = r.value(chosen(v))
        if not v:
            return None
        out = {}
        for k, x in v.items():
            out[k[0].lower() + k[1:]] = sorted(map(str, x)) if isinstance(x, list) else x
        return out

    def access_log_of(settings: dict | None) -> dict | None:
        if not settings:
            return None
        fmt = r.value(settings.get("Format"))
        try:
            fields = json.loads(fmt)
        except (TypeError, ValueError):
            fields = {"<not JSON>": fmt}
        return {"Destination": kind_of(settings.get("DestinationArn")), "Format": fields}

    apis = []
    for lid, v in active.items():
        if v["Type"] != "AWS::ApiGatewayV2::Api":
            continue
        raw = v["Properties"]
        if r.value(raw.get("ProtocolType", "HTTP")) != "HTTP":
            continue
        routes = {}
        body = raw.get("Body") or {}
        for path, methods in (body.get("paths") or {}).items():
            for method, op in (chosen(methods) or {}).items():
                op = chosen(op)
                if not isinstance(op, dict):
                    continue
                integ = op.get("x-amazon-apigateway-integration", {})
                routes[f"{method.upper()} {path}"] = {
                    "Function": function_of_uri(integ.get("uri")),
                    "IntegrationType": str(r.value(integ.get("type"))).upper(),
                    "PayloadFormatVersion": r.value(integ.get("payloadFormatVersion")),
                    "TimeoutInMillis": r.value(integ.get("timeoutInMillis")),
                    "Authorized": bool(op.get("security") or body.get("security")),
                }
        integrations = {k: x for k, x in active.items() if x["Type"] == "AWS::ApiGatewayV2::Integration"}
        for x in active.values():
            if x["Type"] == "AWS::ApiGatewayV2::Route" and ref_target(x["Properties"].get("ApiId")) == lid:
                rp = x["Properties"]
                target = rp.get("Target", {})
                parts = target.get("Fn::Join", ["", []])[1] if isinstance(target, dict) else []
                integ_ids = [ref_target(p) for p in parts if ref_target(p) in integrations]
                integ = integrations[integ_ids[0]]["Properties"] if integ_ids else {}
                auth = r.value(rp.get("AuthorizationType", "NONE"))
                routes[r.value(rp["RouteKey"])] = {
                    "Function": function_of_uri(integ.get("IntegrationUri")),
                    "IntegrationType": str(r.value(integ.get("IntegrationType"))).upper(),
                    "PayloadFormatVersion": r.value(integ.get("PayloadFormatVersion")),
                    "TimeoutInMillis": r.value(integ.get("TimeoutInMillis")),
                    "Authorized": auth not in (None, "NONE"),
                }
        stages = []
        for x in active.values():
            if x["Type"] == "AWS::ApiGatewayV2::Stage" and ref_target(x["Properties"].get("ApiId")) == lid:
                sp = x["Properties"]
                throttling = r.value(sp.get("DefaultRouteSettings") or {})
                stages.append({
                    "StageName": r.value(sp.get("StageName")),
                    "AutoDeploy": bool(r.value(sp.get("AutoDeploy", False))),
                    "ThrottlingRateLimit": throttling.get("ThrottlingRateLimit"),
                    "ThrottlingBurstLimit": throttling.get("ThrottlingBurstLimit"),
                    "AccessLog": access_log_of(sp.get("AccessLogSettings")),
                })
        apis.append({
            "Routes": routes,
            "Cors": cors_of(body.get("x-amazon-apigateway-cors")) if body else cors_of(raw.get("CorsConfiguration")),
            "Stages": sorted(stages, key=lambda st: str(st["StageName"])),
        })
    return sorted(apis, key=lambda a: sorted(a["Routes"]))


def diff(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            if k not in a:
                out.append(f"{path}/{k}: only in CDK: {b[k]!r}")
            elif k not in b:
                out.append(f"{path}/{k}: only in SAM: {a[k]!r}")
            else:
                out.extend(diff(a[k], b[k], f"{path}/{k}"))
        return out
    if isinstance(a, list) and isinstance(b, list) and a and isinstance(a[0], dict):
        if len(a) != len(b):
            return [f"{path}: SAM has {len(a)}, CDK has {len(b)}: {a!r} vs {b!r}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in diff(x, y, f"{path}[{i}]")]
    if isinstance(a, list) and isinstance(b, list) and path.endswith(("alarms", "resource_types", "encryption_at_rest", "lifecycle_rules")):
        ca, cb = Counter(map(repr, a)), Counter(map(repr, b))
        return [f"{path}: only in SAM: {x}" for x in ca - cb] + [f"{path}: only in CDK: {x}" for x in cb - ca]
    return [] if a == b else [f"{path}: SAM {a!r} != CDK {b!r}"]


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    sam = summarize(load_sam(argv[1]))
    with open(argv[2], encoding="utf-8") as f:
        cdk = summarize(json.load(f))
    problems = diff(sam, cdk)
    if problems:
        print("SAM and CDK stacks differ:")
        for p in problems:
            print(f"  {p}")
        return 1
    n = len(sam["functions"])
    print(f"SAM and CDK agree: {n} functions ({', '.join(sorted(sam['functions']))}), "
          f"{len(sam['event_source_mappings'])} event source mappings, {len(sam['async_invoke_configs'])} async invoke configs, "
          f"{len(sam['s3_notifications'])} S3 notifications, {len(sam['alarms'])} alarms, "
          f"{len(sam['encryption_at_rest'])} encrypted stores, {len(sam['lifecycle_rules'])} lifecycle rules, "
          f"{sum(len(a['Routes']) for a in sam['http_apis'])} HTTP API routes, {len(sam['secret_rotations'])} secret rotation(s), "
          f"{len(sam['resource_types'])} resource types")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

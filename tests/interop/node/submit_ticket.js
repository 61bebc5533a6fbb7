#!/usr/bin/env node
// A client written the way an integrator in another language would write one: the service
// definition comes from the repository's proto/ directory and nothing else (no generated Python,
// no shared code), and the error details are read with Google's published google/rpc protos.
//
//   SUPPORTFLOW_TOKEN=<jwt> node submit_ticket.js <host:port> <request_id>
//
// The token comes from the environment rather than argv so it does not show up in `ps`.
// Submits one complete ticket, reads it back, then submits one without a title, and prints a
// single JSON line: {"sent": …, "submitted": …, "fetched": …, "invalid": …}. Exits non-zero on
// anything unexpected, with the reason on stderr.
"use strict";

const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const protobuf = require("protobufjs");
const googleProtoFiles = require("google-proto-files");

const PROTO_ROOT = path.resolve(__dirname, "..", "..", "..", "proto");
const DEADLINE_MS = 15_000;

// keepCase: field names exactly as written in the .proto, so the output reads like the contract.
// longs as strings: int64 (Timestamp.seconds, size_bytes) must survive JSON without rounding.
const LOADER_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

function loadIntake() {
  // includeDirs is proto/ only: google/protobuf/timestamp.proto, the one import from outside it,
  // is a well-known type that protobufjs ships built in.
  const definition = protoLoader.loadSync("supportflow/intake/v1/intake.proto", {
    ...LOADER_OPTIONS,
    includeDirs: [PROTO_ROOT],
  });
  return grpc.loadPackageDefinition(definition).supportflow.intake.v1;
}

function loadRpcStatusTypes() {
  // google-proto-files ships googleapis' google/… tree; resolve every import against its root.
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => googleProtoFiles.getProtoPath("..", target);
  root.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"], { keepCase: true });
  return { Status: root.lookupType("google.rpc.Status"), BadRequest: root.lookupType("google.rpc.BadRequest") };
}

function call(client, method, request, metadata) {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + DEADLINE_MS);
    client[method](request, metadata, { deadline }, (err, response) => (err ? reject(err) : resolve(response)));
  });
}

// The google.rpc.BadRequest field violations the server packs into the grpc-status-details-bin
// trailer (grpc-js has already base64-decoded the -bin value into a Buffer).
function fieldViolations(err, types) {
  const [raw] = err.metadata ? err.metadata.get("grpc-status-details-bin") : [];
  if (!raw) return null;
  const status = types.Status.decode(raw);
  const violations = [];
  for (const detail of status.details) {
    if (detail.type_url === "type.googleapis.com/google.rpc.BadRequest") {
      const bad = types.BadRequest.decode(detail.value);
      for (const v of bad.field_violations) violations.push({ field: v.field, description: v.description });
    }
  }
  return { status_code: status.code, status_message: status.message, field_violations: violations };
}

function ticketRequest(requestId) {
  // Every byte value, so a text-only (or UTF-8-mangling) path for bytes fields would show.
  const content = Buffer.concat([Buffer.from("\x89PNG\r\n\x1a\n", "latin1"), Buffer.from([...Array(256).keys()])]);
  return {
    request_id: requestId,
    organization: "acme",
    title: "Node portal: ERP client crashes on month-end export",
    requester: { id: "E2002", name: "韩梅梅", department: "Finance", company: "ACME", vip: true },
    contact: { email: "han.meimei@acme.example", im: "wecom:hanmeimei" },
    channel: "portal",
    problem_type: "software_crash",
    impact_scope: "department",
    urgency: "high",
    // A fixed past instant with microseconds, the precision the service stores.
    occurred_at: { seconds: "1767225600", nanos: 123456000 }, // 2026-01-01T00:00:00.123456Z
    description: "Exporting the ledger to Excel closes the client without a message.",
    environment: { device: "ThinkPad T14", os: "Windows 11 23H2", software: "ERP client", software_version: "9.1.2" },
    reproduction_steps: ["open Ledger", "choose Export → Excel", "client closes"],
    attachments: [{ file_name: "screen.png", content_type: "image/png", content, kind: "screenshot" }],
    labels: ["erp", "month-end", "node"],
  };
}

async function main() {
  const [target, requestId] = process.argv.slice(2);
  const token = process.env.SUPPORTFLOW_TOKEN;
  if (!target || !requestId || !token) {
    throw new Error("usage: SUPPORTFLOW_TOKEN=<jwt> node submit_ticket.js <host:port> <request_id>");
  }
  const intake = loadIntake();
  const client = new intake.IntakeService(target, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token}`);

  try {
    const request = ticketRequest(requestId);
    const submitted = await call(client, "SubmitTicket", request, metadata);
    const number = submitted.ticket.ticket_number;
    const fetched = await call(client, "GetTicket", { ticket_number: number }, metadata);

    let invalid;
    try {
      await call(client, "SubmitTicket", { ...request, request_id: `${requestId}-untitled`, title: "" }, metadata);
      invalid = { code: 0, code_name: "OK" };
    } catch (err) {
      if (err.code === undefined) throw err; // not a gRPC status: a bug in this script
      invalid = {
        code: err.code,
        code_name: grpc.status[err.code],
        message: err.details,
        ...fieldViolations(err, loadRpcStatusTypes()),
      };
    }

    const sent = {
      ...request,
      attachments: request.attachments.map((a) => ({ ...a, content: a.content.toString("base64") })),
    };
    process.stdout.write(`${JSON.stringify({ sent, submitted, fetched, invalid })}\n`);
  } finally {
    client.close();
  }
}

main().catch((err) => {
  process.stderr.write(`submit_ticket.js: ${err.stack || err}\n`);
  process.exit(1);
});

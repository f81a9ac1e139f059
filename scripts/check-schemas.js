// See scripts/check-schemas.
const fs = require("fs");
const path = require("path");
const Ajv = require("ajv");
const YAML = require("yaml");

const ajv = new Ajv({ strict: true, allErrors: true });
const schemas = {};
for (const kind of ["integration", "network"]) {
  const schema = JSON.parse(fs.readFileSync(`schemas/${kind}.schema.json`, "utf8"));
  schemas[kind] = ajv.compile(schema); // throws on anything strict mode refuses
}

function manifests(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (e.name.startsWith(".")) return [];
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return manifests(p);
    return /\.ya?ml$/.test(e.name) ? [p] : [];
  });
}

let failures = 0;
const check = (file, doc, expectValid) => {
  const kind = String(doc.kind).toLowerCase();
  const validate = schemas[kind];
  const ok = validate(doc);
  if (ok !== expectValid) {
    failures++;
    console.error(`${file}: expected ${expectValid ? "valid" : "invalid"}:`, JSON.stringify(validate.errors));
  }
};
const files = [...manifests("integrations.d"), ...manifests("demo/integrations.d")];
for (const file of files) {
  for (const doc of YAML.parseAllDocuments(fs.readFileSync(file, "utf8"))) {
    check(file, doc.toJS(), true);
  }
}
// What validate refuses, the schema refuses (YAML 1.2: `yes` is text).
const demo = fs.readFileSync("demo/integrations.d/demo-everflow.yaml", "utf8");
for (const [what, edit] of [
  ["enabled: yes", (t) => t.replace("spec:\n", "spec:\n  enabled: yes\n")],
  ["an unknown key", (t) => t.replace("spec:\n", "spec:\n  enabeld: true\n")],
  ["a ratio as a percentage", (t) => t.replace("ratio: 0.8", 'ratio: "80%"')],
]) {
  check(`demo with ${what}`, YAML.parse(edit(demo)), false);
}
if (failures) process.exit(1);
console.log(`check-schemas: ok (${files.length} manifests valid under strict ajv; 3 invalid ones refused)`);

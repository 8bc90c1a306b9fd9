// Fails when src/api/ is stale: regenerates into a temporary folder and compares (CI runs it).
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { generate } from "./gen-api.mjs";

const apiDir = resolve(dirname(fileURLToPath(import.meta.url)), "..", "src", "api");
const tmp = await mkdtemp(join(tmpdir(), "hydra-gen-"));
try {
  const fresh = (await generate(tmp)).sort();
  const committed = (await readdir(apiDir)).sort();
  const problems = [];
  for (const name of new Set([...fresh, ...committed])) {
    if (!fresh.includes(name)) problems.push(`${name}: not generated (remove it)`);
    else if (!committed.includes(name)) problems.push(`${name}: missing`);
    else if ((await readFile(join(tmp, name), "utf8")) !== (await readFile(join(apiDir, name), "utf8")))
      problems.push(`${name}: differs`);
  }
  if (problems.length) {
    console.error(`src/api is stale (run npm run gen):\n  ${problems.join("\n  ")}`);
    process.exitCode = 1;
  } else {
    console.log("src/api is fresh");
  }
} finally {
  await rm(tmp, { recursive: true, force: true });
}

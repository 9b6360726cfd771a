// Drive the TypeScript Agent SDK against one CLI and print every message it yields, one JSON per line.
// usage: node query.mjs SDK_DIR CLI_PATH CWD PROMPT...   (one query per prompt, in one conversation
// through `resume`; errors are printed as {"type":"error","name":...})
import path from "node:path";
import { pathToFileURL } from "node:url";

const [sdkDir, cli, cwd, ...prompts] = process.argv.slice(2);
const { query } = await import(pathToFileURL(path.join(sdkDir, "sdk.mjs")).href);
let sessionId;
for (const prompt of prompts) {
  try {
    const options = { pathToClaudeCodeExecutable: cli, cwd, env: process.env, allowedTools: ["Bash"] };
    if (sessionId) options.resume = sessionId;
    for await (const m of query({ prompt, options })) {
      if (m.type === "result") sessionId = m.session_id;
      console.log(JSON.stringify(m));
    }
  } catch (e) {
    console.log(JSON.stringify({ type: "error", name: e?.name, message: String(e?.message ?? e) }));
  }
}

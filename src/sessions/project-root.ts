/**
 * The project root a coding agent works in, as it tells the model (README, "Agent guardrails"): the guard's
 * `rm-rf-root` rule stops `rm -rf` of it by its absolute path too, not only as `.` or `$PWD`. Each agent
 * states its working directory in its prompt in its own words; read from the request's JSON text (its
 * strings still escaped), only when a command names an absolute path the rule could mean.
 */
const MARKERS: readonly RegExp[] = [
  // Codex: `<environment_context>` … `<cwd>/path</cwd>`.
  /<cwd>(\/[^<"\\]*)<\/cwd>/,
  // Claude Code: `Primary working directory: /path` (older versions: `Working directory: /path`).
  /[Pp]rimary working directory: (\/[^"\\\s]*)/,
  // opencode, older Claude Code.
  /\bWorking directory: (\/[^"\\\s]*)/,
  // Gemini CLI: `**Workspace Directories:**` then a list, one `  - /path` a line.
  /\*\*Workspace Directories:\*\*(?:\\n)+\s*- (\/[^"\\\s]*)/,
];

/** The absolute project roots a request's JSON text states, by the agents' markers above. */
export function projectRootsIn(json: string): string[] {
  const roots: string[] = [];
  for (const marker of MARKERS) {
    const found = marker.exec(json)?.[1];
    if (found !== undefined && found.length > 1 && !roots.includes(found)) roots.push(found);
  }
  return roots;
}

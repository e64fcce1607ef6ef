// cowmap scrub DIR [--repair] [--json] [--secondary DIR2]
// Reads every checksummed structure of the volume and its secondary and reports
// each mismatch with its file, byte offset and region (docs/format.md, "Scrub"),
// one line each: "E_CORRUPT: <file> offset <n> region <r>: <problem>". Without
// --repair the volume is opened read-only (nothing written, a shared lock); with
// it, read-write, and every region a finding affects is marked in the next map, so
// that the next cycle resends it from the primary (DRBD's online verify).
// Exit status: 0 clean (or every finding repaired), 1 otherwise; a volume that open
// refuses with E_CORRUPT is reported as that one finding, exit 1.

import { CowmapError } from '../../impl/errors.ts';
import { NodeStorage } from '../../impl/nodeStorage.ts';
import { ReplicatedVolume } from '../../impl/replicatedVolume.ts';
import type { ScrubFinding, ScrubReport } from '../../impl/scrubFinding.ts';
import { defineCommand } from '../command.ts';
import { description } from '../descriptions/scrub.ts';
import { writeStdout } from '../stdout.ts';
import { volumeDirArgument } from '../volume.ts';

/** One finding's line; the region is "-" for a structure that is no region's (a metadata slot). */
export function findingLine(finding: ScrubFinding): string {
  const suffix = finding.repaired ? ' (repaired: marked for the next cycle)' : '';
  return `E_CORRUPT: ${finding.file} offset ${finding.offset} region ${finding.region ?? '-'}: ${finding.problem}${suffix}`;
}

/**
 * The finding in an open's E_CORRUPT message: messages that name a file, an offset
 * and a region ("... <file> offset <n> region <r>: <problem>") give them; any other
 * is kept whole.
 */
export function openRefusalLine(error: CowmapError): string {
  const match = /(\S+) offset (\d+) region (\d+|-): (.*)$/s.exec(error.message);
  if (match === null) return `E_CORRUPT: ${error.message}`;
  return findingLine({
    file: match[1]!,
    offset: Number(match[2]),
    region: match[3] === '-' ? null : Number(match[3]),
    problem: match[4]!,
    repaired: false,
  });
}

function summaryLine(dir: string, report: ScrubReport, repair: boolean): string {
  const left = report.findings.filter((finding) => !finding.repaired).length;
  const repaired = repair ? `, ${report.findings.length - left} repaired` : '';
  const counts = `${report.findings.length} finding(s)${repaired}, ${report.regionsChecked} region(s) of P and S checked`;
  const marked =
    repair && report.repairedRegions.length > 0
      ? `; ${report.repairedRegions.length} region(s) marked in the next map: run a cycle to resend them`
      : '';
  const verdict = report.findings.length === 0 ? 'clean' : left === 0 ? 'repaired' : `${left} left`;
  return `scrub ${dir}: ${verdict}: ${counts}${marked}`;
}

export const command = defineCommand(description, async ({ values, positionals }) => {
  const dir = volumeDirArgument(positionals);
  const repair = values.repair === true;
  const json = values.json === true;

  // scrubDir opens the volume read-only without --repair; with it, its recovery
  // mends what a resend can (and says so) instead of refusing the volume.
  const secondaryDir = values.secondary;
  let report: ScrubReport;
  try {
    report = ReplicatedVolume.scrubDir(new NodeStorage(), dir, {
      repair,
      ...(secondaryDir === undefined ? {} : { secondaryDir }),
    });
  } catch (error) {
    if (!(error instanceof CowmapError) || error.code !== 'E_CORRUPT') throw error;
    const output = json
      ? JSON.stringify({
          volume: dir,
          repair,
          opened: false,
          error: { code: error.code, message: error.message },
          findings: [],
          repairedRegions: [],
          regionsChecked: 0,
        })
      : `${openRefusalLine(error)}\nscrub ${dir}: the volume does not open (E_CORRUPT): 1 finding, nothing checked${repair ? ' or repaired' : ''}`;
    await writeStdout(`${output}\n`);
    return 1;
  }
  const output = json
    ? JSON.stringify({ volume: dir, repair, opened: true, error: null, ...report })
    : [...report.findings.map(findingLine), summaryLine(dir, report, repair)].join('\n');
  await writeStdout(`${output}\n`);
  return report.findings.every((finding) => finding.repaired) ? 0 : 1;
});

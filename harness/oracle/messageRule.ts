// How the oracle judges rejection messages (docs/protocol.md section 4): the
// rule in force (strict, or warnings), its scope, and the check itself.

import { AsyncLocalStorage } from 'node:async_hooks';
import type { Phase } from '../../model/types.ts';
import { AdapterSut } from '../adapter/adapterSut.ts';
import type { SutOp, SystemUnderTest } from '../sut/systemUnderTest.ts';
import { OracleFailure } from './oracleFailure.ts';

/** A rejection whose message does not name the operation, the region or the phase. */
export interface MessageWarning {
  readonly step: string;
  readonly message: string;
  readonly missing: readonly string[];
}

/** Message warnings of a run: how many, and the first few as examples. */
export class MessageWarnings {
  static readonly examplesMax = 5;
  count = 0;
  readonly examples: MessageWarning[] = [];

  add(warning: MessageWarning): void {
    this.count++;
    if (this.examples.length < MessageWarnings.examplesMax) this.examples.push(warning);
  }
}

/**
 * How rejection messages are judged. The verdict rests on what the protocol
 * defines (states, codes, data): a message must be a non-empty string, and
 * whether it names the operation, the region and the phase (docs/protocol.md
 * section 4 asks for it) is a warning, or a failure when `strict`.
 */
export interface MessageRule {
  readonly strict: boolean;
  /** Where warnings go (none: they are dropped). */
  readonly warnings?: MessageWarnings;
}

const messageRuleScope = new AsyncLocalStorage<MessageRule>();

/**
 * Runs `body` (and everything it awaits, generators included) with `rule`. Outside
 * any scope the rule is strict for the reference implementation in this process
 * (its messages name all three: `cowmap verify`, `cowmap replay` without a
 * command, the mutants) and lenient for an implementation behind the adapter
 * (`cowmap replay FILE -- CMD`), whose wording is its own.
 */
export function withMessageRule<T>(rule: MessageRule, body: () => Promise<T>): Promise<T> {
  return messageRuleScope.run(rule, body);
}

export function messageRuleFor(sut: SystemUnderTest | null): MessageRule {
  return messageRuleScope.getStore() ?? { strict: !(sut instanceof AdapterSut) };
}

/**
 * docs/protocol.md section 4: a rejection says why in a message that names the
 * operation, the region and the phase. A message that is not a non-empty string
 * fails; one that names less is a warning (a failure under a strict rule).
 */
export function checkRejectionMessage(
  rule: MessageRule,
  op: SutOp,
  message: unknown,
  label: string,
  phase: Phase,
): void {
  if (typeof message !== 'string' || message.trim().length === 0) {
    throw new OracleFailure('divergence', `${label}: the rejection has no message (it must be a non-empty string)`, [
      { field: 'message', expected: 'a non-empty string', observed: JSON.stringify(message) ?? String(message) },
    ]);
  }
  const missing: string[] = [];
  if (!message.includes(op.type)) missing.push(`the operation (${op.type})`);
  if ('region' in op && !new RegExp(`(^|[^0-9])${op.region}([^0-9]|$)`).test(message))
    missing.push(`the region (${op.region})`);
  if (!message.includes(phase)) missing.push(`the phase (${phase})`);
  if (missing.length === 0) return;
  if (rule.strict) {
    throw new OracleFailure(
      'divergence',
      `${label}: the rejection's message does not name ${missing.join(', ')}: "${message}"`,
      [{ field: 'message', expected: `names ${missing.join(', ')}`, observed: message }],
    );
  }
  rule.warnings?.add({ step: label, message, missing });
}

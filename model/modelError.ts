// A broken model: an internal contradiction of the model itself (the statechart
// and the rules disagree, a crash outcome breaks an invariant), never bad input.
// The harness reports it as a failure of the model, with the step that led to it,
// instead of letting it escape as a stack trace.

export class ModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelError';
  }
}

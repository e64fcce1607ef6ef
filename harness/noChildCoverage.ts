// Imported first by the test files that start many adapter and cowmap processes
// (`cowmap adapter`, the Python example, conform): under c8 every child of this
// process would inherit NODE_V8_COVERAGE and write one to three coverage files at
// its exit (about 1.5 MB for a tsx process and its loader thread), which c8 then
// reads back; at over a hundred adapter processes that was a large share of
// `make test`'s time. The code those children run in model/ and impl/ is covered
// in process by the other tests (the thresholds of make test still hold), and
// this process's own coverage is not affected: node fixed its coverage directory
// when it started. Test-only: nothing outside *.test.ts imports this file.

delete process.env.NODE_V8_COVERAGE;

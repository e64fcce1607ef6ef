import { explore } from './explorer.ts';
for (const [n, c] of [[3, true], [4, true]] as const) {
  const t0 = performance.now();
  const r = explore({ regions: n, values: 2, crash: c, statesMax: 1e7 });
  console.log(n, c, r.states, r.transitions, r.rejections, r.depthMax, r.violation, ((performance.now() - t0) / 1000).toFixed(2), process.memoryUsage().rss/1e6);
}

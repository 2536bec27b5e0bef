// The subgroup family (8-lane subgroups: lavapipe, where a subgroup is one AVX2 vector): the
// register family's K loop, but a lane loads only rows lane + 8g of A and subgroupShuffle
// hands them to the others (8x fewer A loads). 1-D workgroups (subgroup_invocation_id needs
// them); subgroup sg of the workgroup covers column block sg % wgx and row block sg / wgx.
import { type Family, SUBGROUP } from "./plan.ts";
import { kLoop, registerVec4 } from "./register.ts";

export const subgroup: Family = {
  // A lane loads single rows of A, never a run of 4 along M: a transposed A loads as scalars.
  vec4: (s, t) => ({ a: !s.transA && registerVec4(s, t).a, b: registerVec4(s, t).b }),
  decls: () => "",
  entry: ({ t, TN, TM }) =>
    `@compute @workgroup_size(${t.wgx * t.wgy * SUBGROUP}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32,
        @builtin(subgroup_invocation_id) lane: u32) {
  let sg = li / ${SUBGROUP}u;
  let n0 = (wid.x * ${t.wgx}u + sg % ${t.wgx}u) * ${SUBGROUP * TN}u + lane * ${TN}u;
  let m0 = (wid.y * ${t.wgy}u + sg / ${t.wgx}u) * ${TM}u;`,
  body: (p) => kLoop(p, true),
};

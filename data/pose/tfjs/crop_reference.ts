// tf.image.cropAndResize, the crop MoveNet's tutorial feeds the model, for tests/video_test.ts to
// check data/pose/crop.ts against: `deno run -A --config data/pose/tfjs/deno.json
// data/pose/tfjs/crop_reference.ts '<CropReference as JSON>'` reads height x width x 3 RGB bytes
// on stdin and prints the crop, bilinear with 0 outside the image, cast to int32, as a JSON array.
import { loadTf } from "./tfjs.ts";

export interface CropReference {
  height: number;
  width: number;
  /** [yMin, xMin, yMax, xMax], normalised to the image */
  box: [number, number, number, number];
  rows: number;
  cols: number;
}

if (import.meta.main) {
  const r = JSON.parse(Deno.args[0]) as CropReference;
  const rgb = new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
  const { tf } = await loadTf("cpu");
  const img = tf.tensor4d(Float32Array.from(rgb), [1, r.height, r.width, 3]);
  const crop = tf.image.cropAndResize(img, [r.box], [0], [r.rows, r.cols], "bilinear", 0);
  console.log(JSON.stringify(Array.from(await tf.cast(crop, "int32").data())));
}

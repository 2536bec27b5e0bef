// Checks on the pictures the CLI writes: a PNG's size and that it is not blank (decoded with
// the platform's inflate), and the texts an SVG shows.

/**
 * Width, height, the distinct byte values of a PNG's decompressed image data, and (for 8-bit RGB)
 * the row filters it uses.
 */
export async function decodePng(bytes: Uint8Array) {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (!sig.every((b, i) => bytes[i] === b)) throw new Error("not a PNG signature");
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let width = 0, height = 0;
  const idat: Uint8Array[] = [];
  for (let at = 8; at < bytes.length;) {
    const len = dv.getUint32(at), type = new TextDecoder().decode(bytes.subarray(at + 4, at + 8));
    const body = bytes.subarray(at + 8, at + 8 + len);
    if (type === "IHDR") (width = dv.getUint32(at + 8), height = dv.getUint32(at + 12));
    if (type === "IDAT") idat.push(body);
    at += 12 + len;
  }
  const stream = new Blob(idat as BlobPart[]).stream().pipeThrough(
    new DecompressionStream("deflate"),
  );
  const raw = new Uint8Array(await new Response(stream).arrayBuffer());
  // each row's first byte is its filter type (8-bit RGB: rows of 1 + 3 x width bytes)
  const filters = new Set([...Array(height).keys()].map((y) => raw[y * (1 + 3 * width)]));
  return { width, height, distinct: new Set(raw).size, bytes: raw.length, filters };
}

/** The text content of an SVG's <text> elements (vega writes one per label). */
export function svgTexts(svg: string): string[] {
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) =>
    m[1].replace(/&amp;/g, "&").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"')
  );
}

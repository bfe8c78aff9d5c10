// Opening an image for the model, on the page's thread: decode it as the reference does and
// refuse one over the runtime's limit from its header, before its pixels are decoded.

// Decode pixel values as stored (PIL ignores colour profiles too), oriented as displayed.
const DECODE_OPTIONS = { colorSpaceConversion: "none", imageOrientation: "from-image" };

// An image's size from its header, without decoding its pixels (an <img> decodes lazily):
// a 20000 x 20000 PNG is refused at once instead of after seconds and gigabytes.
async function headerSize(blob) {
  const url = URL.createObjectURL(blob);
  try {
    const img = new Image();
    await new Promise((resolve, reject) => {
      img.onload = resolve;
      img.onerror = reject;
      img.src = url;
    });
    return { width: img.naturalWidth, height: img.naturalHeight };
  } catch {
    return null; // createImageBitmap says why
  } finally {
    URL.revokeObjectURL(url);
  }
}

function checkSize({ width, height }, maxPixels) {
  if (width * height > maxPixels) {
    const mp = (n) => (n / 1e6).toFixed(1);
    throw new Error(
      `the image is ${width} x ${height} pixels (${mp(width * height)} MP); the browser ` +
        `runtime takes at most ${mp(maxPixels)} MP: downscale it first`,
    );
  }
}

// -> {bitmap, file, fileType}: the decoded picture, and the file's own bytes when there is a
// file (uploaded instead of the pixels when the server encodes the image: much smaller).
export async function decodeImage(source, maxPixels) {
  if (source instanceof ImageBitmap) {
    checkSize(source, maxPixels);
    return { bitmap: await createImageBitmap(source), file: null, fileType: "" };
  }
  let blob = source;
  let name = source?.name ?? "the file";
  if (typeof source === "string" || source instanceof URL) {
    name = String(source);
    const response = await fetch(source);
    if (!response.ok) throw new Error(`could not load ${name} (HTTP ${response.status})`);
    blob = await response.blob();
  }
  if (!(blob instanceof Blob)) {
    throw new Error("setImage takes a URL, a File or Blob, or an ImageBitmap");
  }
  if (blob.size === 0) throw new Error(`${name} is empty (0 bytes)`);
  const size = await headerSize(blob);
  if (size) checkSize(size, maxPixels);
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, DECODE_OPTIONS);
  } catch (err) {
    throw new Error(
      `could not read ${name} as an image: it is not a picture this browser can decode, ` +
        `or it is corrupt (${err.message})`,
    );
  }
  return { bitmap, file: await blob.arrayBuffer(), fileType: blob.type };
}

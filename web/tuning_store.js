// The kernel tuning table (sandseg.gpu.tuning: which variant of each kernel is fastest on this
// adapter, measured) lives in Python's file system under SANDSEG_HOME/tuning. In the browser
// that folder is an IndexedDB-backed mount (Emscripten's IDBFS, per origin): read at boot and
// written back after tuning, so later loads of the page reuse the measured choices (issue 14).
const TUNING_DIR = "/home/pyodide/.cache/sandseg/tuning";

function sync(pyodide, populate) {
  return new Promise((resolve, reject) => {
    pyodide.FS.syncfs(populate, (err) => (err ? reject(err) : resolve()));
  });
}

// Mount the folder and read what earlier loads kept -> null, or why the table cannot be kept
// (no IndexedDB, e.g. a private window that refuses it: tuning then lasts the session).
export async function mountTuningStore(pyodide) {
  try {
    pyodide.FS.mkdirTree(TUNING_DIR);
    pyodide.FS.mount(pyodide.FS.filesystems.IDBFS, {}, TUNING_DIR);
    await sync(pyodide, true);
    return null;
  } catch (err) {
    return `the kernel tuning table cannot be kept in this browser (${err?.message ?? err})`;
  }
}

// Write the table back to IndexedDB (after tuning changed it).
export async function saveTuningStore(pyodide) {
  await sync(pyodide, false);
}

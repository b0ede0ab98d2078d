// A push's stored members come from a pool used again once the socket has written them: through a server that
// reads slowly (the kernel's send queue full, each write still reading the member's buffer after the call returned),
// the tree pulled back is byte for byte the tree pushed.
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as nodePath from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { startServer } from "../../server/support.js"
import { fileSync } from "../../support/fileSync.js"
import { freshDatabase } from "../../support/pg.js"
import { tempDirs, treeFiles } from "../../support/tree.js"

let server: Awaited<ReturnType<typeof startServer>>
const proxies: Array<net.Server> = []
beforeAll(async () => {
  server = await startServer(await freshDatabase("uploadpool"))
})
afterAll(async () => {
  for (const p of proxies) p.close()
  await server?.stop()
})

const tempDir = tempDirs("uploadpool")

/**
 * A loopback proxy to `target` that reads what the client sends one piece at a time, a millisecond apart: the
 * client's writes queue in the kernel and complete long after they were made.
 */
const slowReader = async (target: string) => {
  const { hostname, port } = new URL(target)
  const proxy = net.createServer((client) => {
    const upstream = net.connect(Number(port), hostname)
    upstream.pipe(client)
    client.on("data", (piece) => {
      upstream.write(piece)
      client.pause()
      setTimeout(() => client.resume(), 1)
    })
    client.on("end", () => upstream.end())
    client.on("error", () => upstream.destroy())
    upstream.on("error", () => client.destroy())
  })
  proxies.push(proxy)
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve))
  return `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`
}

describe("upload through a slow reader", () => {
  it.live(
    "sends byte-identical content while the pooled member buffers are written late",
    () =>
      Effect.gen(function* () {
        const root = tempDir("push")
        const services = nodePath.join(root, "services")
        // Incompressible bytes in many members (batches of about 1 MiB, and a file cut into several members), more
        // than the kernel's socket buffers hold, so buffers go round the pool while earlier ones are still queued.
        for (let i = 0; i < 12; i++) {
          const dir = nodePath.join(services, "content", `g${i % 3}`)
          fs.mkdirSync(dir, { recursive: true })
          fs.writeFileSync(nodePath.join(dir, `f${i}.bin`), randomBytes(700 * 1024 + i))
        }
        fs.writeFileSync(nodePath.join(services, "content", "large.bin"), randomBytes(5 * 1024 * 1024 + 7))
        const tenant = yield* Effect.promise(() => server.createTenant("slow-reader"))
        const token = tenant.token
        const via = yield* Effect.promise(() => slowReader(server.url))
        yield* fileSync(via, root, token).push()
        const into = tempDir("pull")
        fs.mkdirSync(nodePath.join(into, "services"))
        yield* fileSync(server.url, into, token).pull()
        expect(treeFiles(nodePath.join(into, "services"), "base64")).toEqual(treeFiles(services, "base64"))
      }),
    60_000
  )
})

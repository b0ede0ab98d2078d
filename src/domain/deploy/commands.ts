/** The argv of each deploy step for a builder, one function for the real run and the dry run alike. */
import { isLoopbackRegistry, registryHost } from "./image.js"

export type Builder = "docker" | "buildah"
export const BUILDERS: ReadonlyArray<Builder> = ["docker", "buildah"]

export interface ImageBuild {
  readonly builder: Builder
  /** `registry/app:tag`. */
  readonly image: string
  readonly dockerfile: string
  readonly context: string
}

export interface RegistryAccess {
  readonly builder: Builder
  readonly image: string
  readonly registry: string
  readonly username: string
  /** The per-deploy temporary folder holding the credential (DOCKER_CONFIG). */
  readonly configDir: string
}

/** A command line as run: the program, then its arguments (never empty, never shell-parsed). */
export type Argv = readonly [program: string, ...args: Array<string>]

export interface Step {
  readonly argv: Argv
  /** Added to the environment (never a secret: those go on stdin). */
  readonly env: Readonly<Record<string, string>>
  /** What goes on stdin, by name; the value is supplied when the step runs. */
  readonly stdin?: "registry password"
}

export const authFile = (configDir: string) => `${configDir}/config.json`
export const digestFile = (configDir: string) => `${configDir}/digest`

export const buildImageStep = (b: ImageBuild): Step => ({
  argv:
    b.builder === "docker"
      ? ["docker", "build", "-f", b.dockerfile, "-t", b.image, b.context]
      : ["buildah", "bud", "-f", b.dockerfile, "-t", b.image, b.context],
  env: {}
})

/** buildah, like Docker for 127.0.0.0/8, talks plain HTTP to a registry on this machine only. */
const tls = (r: RegistryAccess) => (isLoopbackRegistry(r.registry) ? ["--tls-verify=false"] : [])

export const loginStep = (r: RegistryAccess): Step => ({
  argv:
    r.builder === "docker"
      ? ["docker", "login", registryHost(r.registry), "-u", r.username, "--password-stdin"]
      : [
          "buildah",
          "login",
          "--authfile",
          authFile(r.configDir),
          ...tls(r),
          "-u",
          r.username,
          "--password-stdin",
          registryHost(r.registry)
        ],
  env: { DOCKER_CONFIG: r.configDir },
  stdin: "registry password"
})

export const pushStep = (r: RegistryAccess): Step => ({
  argv:
    r.builder === "docker"
      ? ["docker", "push", r.image]
      : [
          "buildah",
          "push",
          "--authfile",
          authFile(r.configDir),
          ...tls(r),
          "--digestfile",
          digestFile(r.configDir),
          r.image,
          `docker://${r.image}`
        ],
  env: { DOCKER_CONFIG: r.configDir }
})

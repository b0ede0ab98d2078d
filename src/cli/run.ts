/** The CLI process: the whole command line on argv (bundled as dist/cli.cjs). */
import { main } from "./main.js"
import { runProcess } from "./process.js"

runProcess(main)

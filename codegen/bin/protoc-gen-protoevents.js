#!/usr/bin/env node
// Runs the plugin on the CodeGeneratorRequest from stdin. The plugin is
// TypeScript; tsx compiles it on the fly.
import { register } from "tsx/esm/api";

register();
const { runNodeJs } = await import("@bufbuild/protoplugin");
const { protocGenProtoevents } = await import("../src/plugin.ts");
runNodeJs(protocGenProtoevents);

// Device acquisition: one adapter, the optional features that exist, and a description
// of it for `heatformer info`. Everything else in the runtime takes a `Gpu` from here.

/** What `heatformer info` prints about the adapter. */
export interface AdapterDescription {
  name: string;
  vendor: string;
  architecture: string;
  backend: string;
  isFallback: boolean;
  features: string[];
  enabledFeatures: string[];
  subgroups: boolean;
  f16: boolean;
  timestampQuery: boolean;
  limits: Record<string, number>;
}

export interface Gpu {
  readonly adapter: GPUAdapter;
  readonly device: GPUDevice;
  readonly description: AdapterDescription;
  /** `shader-f16` was granted: f16 storage kernels can be built. */
  readonly f16: boolean;
  /** Subgroup built-ins compile and run (probed, not just listed). */
  readonly subgroups: boolean;
  /** The subgroup size when the adapter fixes one (min = max), else 0. */
  readonly subgroupSize: number;
  /** A CPU-emulated adapter (llvmpipe / lavapipe / WARP): kernels pick CPU-friendly tilings. */
  readonly software: boolean;
}

export class NoAdapterError extends Error {
  constructor() {
    super(
      "no WebGPU adapter found. heatformer needs WebGPU: on a machine without a GPU install " +
        "Mesa's software Vulkan driver (Debian/Ubuntu: `apt-get install mesa-vulkan-drivers`, " +
        "from bookworm-backports for Mesa 25, about 3x faster) or Mesa's OpenGL llvmpipe; " +
        "on a GPU machine install the vendor's Vulkan driver.",
    );
    this.name = "NoAdapterError";
  }
}

const LIMIT_NAMES = [
  "maxBufferSize",
  "maxStorageBufferBindingSize",
  "maxUniformBufferBindingSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBuffersPerShaderStage",
  "maxBindGroups",
  "minStorageBufferOffsetAlignment",
] as const;

function backendOf(info: GPUAdapterInfo, features: string[]): string {
  // Deno does not expose the wgpu backend; lavapipe (Vulkan) advertises shader-f16 and a
  // fixed subgroup size, the OpenGL path neither.
  const d = info.description.toLowerCase();
  if (d.includes("llvmpipe")) {
    return features.includes("shader-f16") ? "vulkan (lavapipe)" : "opengl (llvmpipe)";
  }
  return info.architecture ? `native (${info.architecture})` : "native";
}

/** A CPU-emulated adapter: llvmpipe, lavapipe, SwiftShader, WARP, or one that says it falls back. */
export function isSoftwareAdapter(info: GPUAdapterInfo): boolean {
  return info.isFallbackAdapter || /llvmpipe|lavapipe|swiftshader|warp/i.test(info.description);
}

export interface GpuOptions {
  /** Ask for `shader-f16` (default true where it exists). */
  f16?: boolean;
  /** Probe and enable subgroups (default true). */
  subgroups?: boolean;
  powerPreference?: GPUPowerPreference;
}

/** Requests the adapter and a device with every optional feature heatformer can use. */
export async function acquireGpu(options: GpuOptions = {}): Promise<Gpu> {
  const adapter = await navigator.gpu?.requestAdapter({
    powerPreference: options.powerPreference ?? "high-performance",
  });
  if (!adapter) throw new NoAdapterError();
  const listed = [...adapter.features].map(String).sort();
  const wanted: GPUFeatureName[] = [];
  if (options.f16 !== false && listed.includes("shader-f16")) wanted.push("shader-f16");
  if (listed.includes("timestamp-query")) wanted.push("timestamp-query");
  // lavapipe does not list "subgroups" but grants it when asked; try, fall back without.
  let device: GPUDevice | undefined;
  let subgroups = false;
  if (options.subgroups !== false) {
    try {
      device = await adapter.requestDevice({
        requiredFeatures: [...wanted, "subgroups" as GPUFeatureName],
        requiredLimits: bigLimits(adapter),
      });
      subgroups = true;
    } catch {
      device = undefined;
    }
  }
  device ??= await adapter.requestDevice({
    requiredFeatures: wanted,
    requiredLimits: bigLimits(adapter),
  });
  const info = adapter.info;
  const limits: Record<string, number> = {};
  for (const n of LIMIT_NAMES) limits[n] = Number(device.limits[n]);
  const enabled = [...device.features].map(String).sort();
  const software = isSoftwareAdapter(info);
  const description: AdapterDescription = {
    name: info.description || info.device || "unknown",
    vendor: info.vendor,
    architecture: info.architecture,
    backend: backendOf(info, listed),
    isFallback: info.isFallbackAdapter ?? software,
    features: listed,
    enabledFeatures: enabled,
    subgroups,
    f16: enabled.includes("shader-f16"),
    timestampQuery: enabled.includes("timestamp-query"),
    limits,
  };
  const sgInfo = info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
  const subgroupSize =
    subgroups && sgInfo.subgroupMinSize && sgInfo.subgroupMinSize === sgInfo.subgroupMaxSize
      ? sgInfo.subgroupMinSize
      : 0;
  return { adapter, device, description, f16: description.f16, subgroups, subgroupSize, software };
}

function bigLimits(adapter: GPUAdapter): Record<string, number> {
  // Ask for the adapter's maxima: the defaults (128 MiB bindings, 8 storage buffers) are
  // below what the attention backward and large batches need on real GPUs.
  const l = adapter.limits;
  return {
    maxBufferSize: Number(l.maxBufferSize),
    maxStorageBufferBindingSize: Number(l.maxStorageBufferBindingSize),
    maxStorageBuffersPerShaderStage: Number(l.maxStorageBuffersPerShaderStage),
    maxComputeWorkgroupStorageSize: Number(l.maxComputeWorkgroupStorageSize),
    maxComputeInvocationsPerWorkgroup: Number(l.maxComputeInvocationsPerWorkgroup),
    maxComputeWorkgroupSizeX: Number(l.maxComputeWorkgroupSizeX),
    maxComputeWorkgroupSizeY: Number(l.maxComputeWorkgroupSizeY),
  };
}

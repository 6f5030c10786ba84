/**
 * The gRPC status of a failed Pub/Sub call. The client rejects with an
 * error carrying the status as a numeric `code` (and a `details` string);
 * modules that decide by status (missing resource, already exists, a
 * stream that cannot succeed) read it here rather than each on its own.
 */

/** The gRPC status codes protoevents decides by (grpc/status.proto). */
export const GrpcStatus = {
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  UNAUTHENTICATED: 16,
} as const;

/** The gRPC status code of an error, when it carries a numeric one. */
export function grpcCode(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) {
    return undefined;
  }
  const code = (error as { code?: unknown }).code;
  return typeof code === "number" ? code : undefined;
}

/** The gRPC status details of an error, when it carries them. */
export function grpcDetails(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) {
    return undefined;
  }
  const details = (error as { details?: unknown }).details;
  return typeof details === "string" ? details : undefined;
}

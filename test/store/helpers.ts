import pg from "pg";
import { PG_URL } from "../helpers/stores.js";

export { PG_URL, uniqueName } from "../helpers/stores.js";
export { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";

let admin: pg.Pool | undefined;

/** Run SQL on a small admin pool outside any store (schema cleanup, terminating backends). */
export async function adminQuery<R extends pg.QueryResultRow>(
  text: string,
  params: unknown[] = [],
): Promise<R[]> {
  admin ??= new pg.Pool({
    connectionString: PG_URL,
    max: 2,
    application_name: "protoevents-test-admin",
  });
  const result = await admin.query<R>(text, params);
  return result.rows;
}

/** Drop a test schema and everything in it. */
export async function dropSchema(schema: string): Promise<void> {
  await adminQuery(`drop schema if exists "${schema}" cascade`);
}

/** End the admin pool (afterAll). */
export async function closeAdmin(): Promise<void> {
  const pool = admin;
  admin = undefined;
  await pool?.end();
}

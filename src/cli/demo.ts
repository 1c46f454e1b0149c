export async function runDemo(_: { logLevel: string }): Promise<number> {
  return 0;
}

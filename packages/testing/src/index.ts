/**
 * Test fixtures shared by the workspace's packages. Private: never
 * published, only ever a devDependency.
 */
export { Conditions } from "./conditions.js";
export { FakeTime } from "./fake-time.js";

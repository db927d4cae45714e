// The package version, recorded in the page registry by the copy that
// creates a shared client (useful when several copies meet on one page).
// A unit test keeps it equal to package.json's version.
export const VERSION = '0.1.0';

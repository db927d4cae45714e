// 10. One connection per browser, mode `worker`: a SharedWorker owns the
// browser's one stream (Chromium as it is).
// What is checked, and how: tabs.mjs.
import { tabsSuite } from './tabs.mjs';

tabsSuite('worker');

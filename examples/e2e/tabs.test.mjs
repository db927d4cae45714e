// 10. One connection per browser: the tabs of one browser profile share one
// stream. This file: the browser as it is, where a SharedWorker owns the
// stream (mode `worker`); tabs-leader.test.mjs and tabs-tab.test.mjs run the
// same suite with SharedWorker (and Web Locks) taken away. What is checked,
// and how: tabs.mjs.
import { tabsSuite } from './tabs.mjs';

tabsSuite('worker');

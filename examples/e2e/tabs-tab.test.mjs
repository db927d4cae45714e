// 10. One connection per browser, mode `tab`: neither SharedWorker nor Web
// Locks, so every tab has its own stream, as before sharing (the control).
// What is checked, and how: tabs.mjs.
import { tabsSuite } from './tabs.mjs';

tabsSuite('tab');

// 10. One connection per browser, mode `leader`: no SharedWorker, so the
// tabs elect a leader with Web Locks, which relays over BroadcastChannel.
// What is checked, and how: tabs.mjs.
import { tabsSuite } from './tabs.mjs';

tabsSuite('leader');

/** `grid init`: create the home. */
import { homePaths } from '../../home/home.js';
import { toJsonText } from '../format.js';
import { withKernel } from '../home-ops.js';
import { EXIT, verb, type Session } from '../invocation.js';

export const initCommand = (session: Session) =>
  verb(
    session,
    'init',
    'create the home: identity key, block store, journal; print the principal',
    (c) => c,
    async (inv) =>
      withKernel(
        inv,
        async (kernel) => {
          inv.io.out(inv.json ? toJsonText({ principal: kernel.principal, home: homePaths(inv.home).root }) : kernel.principal);
          return EXIT.ok;
        },
        { create: true },
      ),
  );

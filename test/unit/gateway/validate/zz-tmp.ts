import Ajv2020 from 'ajv/dist/2020.js';
import Ajv from 'ajv';
const a = new Ajv2020({ allErrors: true });
const b = new Ajv({ allErrors: true });
console.log(typeof a.compile, typeof b.compile);
